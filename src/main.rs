//! `detach`: parse, run, print one error line, exit. The logic is the library's.

fn main() -> std::process::ExitCode {
    detach::__main()
}
