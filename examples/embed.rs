//! Sentence embeddings from the command line.
//!
//! ```sh
//! cargo run --release --example embed -- --model models/all-MiniLM-L6-v2 "A man is eating food." "Hello"
//! echo "one text per line" | cargo run --release --example embed -- --model models/all-MiniLM-L6-v2 --json
//! ```
//! Prints `{"model","adapter","dims","max_seq_length","tokens","truncated","embeddings":[[...], ...]}`
//! with `--json`; otherwise a line per text with its token count and first values.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    if let Err(e) = pollster::block_on(run()) {
        eprintln!("embed: {e}");
        std::process::exit(1);
    }
}

#[cfg(not(target_arch = "wasm32"))]
async fn run() -> webgpu_infer::Result<()> {
    use std::io::BufRead;
    use webgpu_infer::{Error, Gpu, models::embedder::Embedder};

    let mut args = std::env::args().skip(1);
    let (mut model, mut json, mut texts) = (None, false, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => model = args.next(),
            "--json" => json = true,
            "-h" | "--help" => {
                println!(
                    "embed --model DIR [--json] [TEXT ...]   (texts from stdin, one a line, when none given)"
                );
                return Ok(());
            }
            _ => texts.push(a),
        }
    }
    let model = model.ok_or_else(|| {
        Error::Input("--model DIR is required (a sentence-transformers folder)".into())
    })?;
    if texts.is_empty() {
        texts = std::io::stdin()
            .lock()
            .lines()
            .map_while(|l| l.ok())
            .collect();
    }
    let gpu = Gpu::new().await?;
    let embedder = Embedder::from_dir(&gpu, model.as_ref())?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let out = embedder.embed(&refs).await?;
    if json {
        let value = serde_json::json!({
            "model": model,
            "adapter": gpu.adapter_name(),
            "dims": out.dims,
            "max_seq_length": embedder.max_seq_length(),
            "tokens": out.tokens,
            "truncated": out.truncated,
            "embeddings": out.vectors,
        });
        println!("{value}");
    } else {
        for ((text, v), n) in texts.iter().zip(&out.vectors).zip(&out.tokens) {
            let head: Vec<String> = v.iter().take(4).map(|x| format!("{x:.4}")).collect();
            println!("{n:>4} tokens  [{}, ...]  {text}", head.join(", "));
        }
    }
    Ok(())
}
