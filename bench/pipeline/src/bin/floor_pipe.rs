//! foco-bench-floor-pipe: the floor of `make bench-pipeline` (see
//! `foco_bench_pipeline::floor`). Started and killed by the benchmark.

// The allocator the Foco service binaries use.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    foco_bench_pipeline::floor::run().await
}
