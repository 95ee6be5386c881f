fn main() -> std::process::ExitCode {
    sigil::cli::main()
}
