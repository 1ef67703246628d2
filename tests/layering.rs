//! The layers of `src/`, lowest first, and the rule that a module only uses its own layer or lower
//! ones: the runtime (device, buffers, tensors, recorder, errors) knows nothing of file formats,
//! kernels, models or the JS API; formats know nothing of kernels; and so on up. The README's
//! "Layout" section lists the same layers.
//!
//! The check reads every `.rs` file under `src/`, drops comments, and looks at each `crate::` path:
//! a path into a higher layer than the file's own is an upward arrow, and fails the test (with the
//! file, the line and both layers named).

use std::path::{Path, PathBuf};

/// Layers, lowest first: (name, the top-level items of `src/` in it).
const LAYERS: &[(&str, &[&str])] = &[
    (
        "runtime",
        &[
            "runtime",
            "gpu",
            "tensor",
            "recorder",
            "error",
            "clock",
            "profile",
            "dtype",
            "qtensor",
            "bind_groups",
            "Gpu",
            "GpuOptions",
            "Capabilities",
            "Tensor",
            "DType",
            "QTensor",
            "QuantType",
            "Recorder",
            "Error",
            "FormatProblem",
            "Result",
            "Stats",
        ],
    ),
    ("formats", &["formats"]),
    ("kernels", &["kernels"]),
    ("cpu", &["cpu"]),
    ("bridge", &["bridge"]),
    ("models", &["models"]),
    ("bench", &["bench"]),
    ("web", &["web"]),
];

fn layer_of_item(item: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, items)| items.contains(&item))
}

/// The layer a source file belongs to, from its path under `src/` (`lib.rs` is above all).
fn layer_of_file(rel: &Path) -> Option<usize> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    let item = first.strip_suffix(".rs").unwrap_or(first);
    if item == "lib" {
        return None;
    }
    layer_of_item(item)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text with `//` comments (doc comments included) removed; string literals are left alone.
fn strip_comments(line: &str) -> &str {
    line.find("//").map_or(line, |i| &line[..i])
}

/// Every `crate::ITEM` in `code`, and `use crate::{A, B::..}` groups' first items.
fn crate_items(code: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    items.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            items.push(name);
        }
    }
    items
}

#[test]
fn no_module_uses_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut upward = Vec::new();
    let mut checked = 0;
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src/");
        let Some(own) = layer_of_file(rel) else {
            continue;
        };
        checked += 1;
        let text = std::fs::read_to_string(file).expect("a readable source file");
        for (n, line) in text.lines().enumerate() {
            for item in crate_items(strip_comments(line)) {
                match layer_of_item(&item) {
                    Some(l) if l > own => upward.push(format!(
                        "src/{}:{}: {} (layer {}) uses crate::{item} (layer {})",
                        rel.display(),
                        n + 1,
                        rel.display(),
                        LAYERS[own].0,
                        LAYERS[l].0
                    )),
                    Some(_) => {}
                    None => upward.push(format!(
                        "src/{}:{}: crate::{item} is in no layer: add it to LAYERS in tests/layering.rs",
                        rel.display(),
                        n + 1
                    )),
                }
            }
        }
    }
    assert!(checked > 40, "only {checked} source files found under src/");
    assert!(upward.is_empty(), "upward imports:\n{}", upward.join("\n"));
}

/// The checker itself: an upward path is seen, in a group too; comments are not code.
#[test]
fn the_checker_sees_upward_paths() {
    assert_eq!(
        crate_items("use crate::models::llama; let x = crate::web::f();"),
        ["models", "web"]
    );
    assert_eq!(
        crate_items("use crate::{gpu::Gpu, kernels::quant};"),
        ["gpu", "kernels"]
    );
    assert_eq!(
        crate_items(strip_comments("let a = 1; // crate::web")),
        Vec::<String>::new()
    );
    assert_eq!(layer_of_file(Path::new("runtime/gpu.rs")), Some(0));
    assert_eq!(layer_of_file(Path::new("web/mod.rs")), layer_of_item("web"));
    assert!(layer_of_item("models") > layer_of_item("kernels"));
}
