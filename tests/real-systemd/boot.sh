#!/usr/bin/env bash
# tests/real-systemd/boot.sh — boots the host's systemd as PID 1 in private
# namespaces, on a throw-away copy-on-write view of the host's root, for
# tests/it/real_systemd.rs. Nothing is installed and nothing on the host is
# written, except CGROUP (made by the caller, who removes it afterwards).
#
#   boot.sh SHARE CGROUP NAME
#
# SHARE   a directory of the caller's. It holds SHARE/units/* (copied into
#         /etc/systemd/system of the booted system, whose default unit is
#         SHARE/units/detach-test.target) and whatever else the units need;
#         it is bound on /share inside. SHARE/console receives what systemd
#         prints on its console; SHARE/mnt is a mount point made here.
# CGROUP  an empty directory under the host's cgroup2 mount (findmnt -n -o
#         TARGET -t cgroup2): the root of the booted system's cgroup tree.
# NAME    the container name systemd sees ($container).
#
# The process that runs this script becomes `unshare`, whose only child is
# systemd: `nsenter -t <that child> -a systemctl ...` drives it, `systemctl
# poweroff --check-inhibitors=no` ends it. unshare --kill-child: if unshare is
# killed, so is systemd, and with it everything in its pid namespace.
#
# Why not systemd-nspawn: it refuses `-D /`, and --volatile=yes needs a
# system bus on the host. What follows is what nspawn does, in shell.
set -euo pipefail

# systemd-nspawn's default capability bounding set (systemd-nspawn(1),
# --capability=): units that would change the host (sysctl, modules-load)
# lack the capabilities they need and skip themselves.
readonly CAPS=audit_control,audit_write,chown,dac_override,dac_read_search,fowner,fsetid,ipc_owner,kill,lease,linux_immutable,mknod,net_bind_service,net_broadcast,net_raw,setfcap,setgid,setpcap,setuid,sys_admin,sys_boot,sys_chroot,sys_nice,sys_ptrace,sys_resource,sys_tty_config

fatal() {
  echo "boot.sh: fatal: $*" >&2
  exit 1
}

# Stage 1, on the host: new pid, mount, uts, ipc and net namespaces, this
# script again as their PID 1.
host() {
  local share=$1 cgroup=$2 name=$3
  [[ -d $share/units ]] || fatal "no units directory in $share"
  [[ -f $cgroup/cgroup.procs ]] || fatal "$cgroup is not a cgroup2 directory"
  exec unshare --pid --fork --mount --uts --ipc --net --kill-child=SIGKILL "$0" --pid1 "$share" "$cgroup" "$name"
}

# Stage 2, PID 1 of the new pid namespace: move into CGROUP, then make it the
# root of a new cgroup namespace (systemd then owns the tree below it).
pid1() {
  local share=$1 cgroup=$2 name=$3
  echo 0 >"$cgroup/cgroup.procs"
  exec unshare --cgroup "$0" --root "$share" "$name"
}

# Stage 3: build the new root and exec systemd in it.
root() {
  local share=$1 name=$2
  local mnt=$share/mnt
  local new=$mnt/root
  mount --make-rprivate /

  # The host's root, copy-on-write: lower /, upper and work dirs on a tmpfs.
  mkdir -p "$mnt"
  mount -t tmpfs -o mode=0755 tmpfs "$mnt"
  mkdir "$mnt/upper" "$mnt/work" "$new"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$mnt/upper,workdir=$mnt/work" "$new"

  # /dev: a tmpfs with the harmless devices of the host, and a file as the
  # console so that what systemd prints there can be read afterwards.
  mount -t tmpfs -o mode=0755,nosuid tmpfs "$new/dev"
  local dev
  for dev in null zero full random urandom tty; do
    touch "$new/dev/$dev"
    mount --bind "/dev/$dev" "$new/dev/$dev"
  done
  touch "$share/console" "$new/dev/console"
  mount --bind "$share/console" "$new/dev/console"
  mkdir "$new/dev/pts" "$new/dev/shm"
  ln -s /proc/self/fd "$new/dev/fd"
  ln -s /proc/self/fd/0 "$new/dev/stdin"
  ln -s /proc/self/fd/1 "$new/dev/stdout"
  ln -s /proc/self/fd/2 "$new/dev/stderr"
  ln -s pts/ptmx "$new/dev/ptmx"

  # The kernel's views: this pid namespace's proc with /proc/sys read-only,
  # sysfs read-only, and the cgroup2 tree as the new cgroup namespace sees it.
  mount -t proc -o nosuid,nodev,noexec proc "$new/proc"
  mount --bind "$new/proc/sys" "$new/proc/sys"
  mount -o remount,bind,ro "$new/proc/sys"
  mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$new/sys"
  mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$new/sys/fs/cgroup"

  # The caller's files, and its units installed where an admin puts them.
  mkdir -p "$new/share"
  mount --bind "$share" "$new/share"
  cp "$share"/units/* "$new/etc/systemd/system/"

  cd "$new"
  mkdir -p oldroot
  pivot_root . oldroot
  umount -l /oldroot
  rmdir /oldroot
  cd /
  exec env -i container="$name" PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    setpriv --bounding-set "-all,+${CAPS//,/,+}" \
    /lib/systemd/systemd --unit=detach-test.target
}

case ${1:-} in
  --pid1) shift; pid1 "$@" ;;
  --root) shift; root "$@" ;;
  *) (($# == 3)) || fatal "usage: boot.sh SHARE CGROUP NAME"; host "$@" ;;
esac
