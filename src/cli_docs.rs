//! The man page and shell completions shipped in the repo are generated from
//! the clap definition; these tests fail when they are out of date.
//! Regenerate with: UPDATE_DOCS=1 cargo test --lib docs
//!
//! Unit tests, not integration tests: the clap definition is crate-private
//! (the library's API is for programs that daemonize themselves).

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;

fn check(path: &str, generated: Vec<u8>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
    }
    let shipped = std::fs::read(&path).unwrap_or_default();
    assert!(
        shipped == generated,
        "{} is out of date: run UPDATE_DOCS=1 cargo test --lib docs, and commit it",
        path.display()
    );
}

#[test]
fn man_page_is_up_to_date() {
    let mut page = Vec::new();
    let cli = crate::cli::Cli::command();
    clap_mangen::Man::new(cli.clone()).render(&mut page).unwrap();
    assert!(String::from_utf8_lossy(&page).contains("reopen"), "the man page lacks the verbs");
    check("doc/detach.1", page);
    // Its SEE ALSO names detach-VERB(1) for each verb: those pages exist too.
    for verb in cli.get_subcommands().filter(|v| v.get_name() != "help") {
        let name = format!("detach-{}", verb.get_name());
        let mut page = Vec::new();
        clap_mangen::Man::new(verb.clone().name(&*String::leak(name.clone()))).render(&mut page).unwrap();
        check(&format!("doc/{name}.1"), page);
    }
}

#[test]
fn shell_completions_are_up_to_date() {
    for (shell, file) in [(Shell::Bash, "detach.bash"), (Shell::Zsh, "_detach"), (Shell::Fish, "detach.fish")] {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut crate::cli::Cli::command(), "detach", &mut script);
        assert!(String::from_utf8_lossy(&script).contains("--pidfile"), "{file} lacks --pidfile");
        check(&format!("completions/{file}"), script);
    }
}
