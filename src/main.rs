// See Cargo.toml: the gateway's per-request allocations are cheaper with mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sigil::cli::main()
}
