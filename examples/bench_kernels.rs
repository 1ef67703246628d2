//! Kernel benchmark: prints one JSON line per measurement (see `webgpu_infer::bench`).
//!
//! ```sh
//! cargo run --release --example bench_kernels                  # everything, up to 4096³ and seq 2048
//! cargo run --release --example bench_kernels -- --quick       # small sizes (software adapters)
//! cargo run --release --example bench_kernels -- --ops matmul,gemv
//! ```

#[cfg(target_arch = "wasm32")]
fn main() {
    // Native only: in a browser the same benchmarks run from www/bench/kernels.html.
}

#[cfg(not(target_arch = "wasm32"))]
use webgpu_infer::{
    Gpu, Result,
    bench::{BenchConfig, run},
};

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    if let Err(e) = pollster::block_on(bench()) {
        eprintln!("bench_kernels: {e}");
        std::process::exit(1);
    }
}

#[cfg(not(target_arch = "wasm32"))]
async fn bench() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut cfg = BenchConfig::default();
    let mut options = webgpu_infer::GpuOptions::default();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--quick" => {
                cfg.max_square = 512;
                cfg.max_seq = 512;
                cfg.copy_bytes = 32 << 20;
                cfg.target_ms = 100.0;
            }
            "--checked" => options.unchecked_shaders = false,
            "--no-coop" => options.allow_cooperative_matrix = false,
            "--ops" => {
                i += 1;
                cfg.ops = args
                    .get(i)
                    .map(|s| s.split(',').map(String::from).collect())
                    .unwrap_or_default();
            }
            "--max-square" => {
                i += 1;
                cfg.max_square = args
                    .get(i)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(cfg.max_square);
            }
            "-h" | "--help" => {
                println!(
                    "bench_kernels [--quick] [--checked] [--no-coop] [--ops copy,matmul,linear,linear_kernels,gemv,attention,conv,chain,bert_chain,decode] [--max-square N]"
                );
                return Ok(());
            }
            other => {
                eprintln!("bench_kernels: unknown argument {other:?} (try --help)");
                std::process::exit(2);
            }
        }
        i += 1;
    }
    let gpu = Gpu::with_options(&options).await?;
    eprintln!("adapter: {} {:?}", gpu.adapter_name(), gpu.capabilities());
    run(&gpu, &cfg, &mut |line| println!("{line}")).await
}
