//! Every kernel's uniform `Params` exists twice: a `#[repr(C)]` Rust struct in `src/kernels/*.rs`
//! (written into the uniform buffer with bytemuck) and a WGSL struct in the shaders that module
//! includes. They must agree field by field: the same names (padding aside), at the same byte
//! offsets, of the same scalar type and count, and the same size. A field added on one side only, or
//! two swapped, makes the kernel read the wrong values without any error; this test names the module
//! and the field.
//!
//! It reads the sources as text: the Rust struct's fields (`u32`, `i32`, `f32` and arrays of them,
//! 4-byte aligned as `repr(C)` lays them out) and the WGSL struct's (scalars, and `vecN<T>` with
//! WGSL's alignment: 8 bytes for vec2, 16 for vec3 and vec4).

use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
struct Field {
    name: String,
    offset: usize,
    elem: String,
    count: usize,
}

/// The fields of `struct Params { ... }` in `code` (comments removed), as (name, type) pairs; None
/// when there is no such struct.
fn params_body(code: &str) -> Vec<Vec<(String, String)>> {
    let code: String = code
        .lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("struct Params {") {
        let body = &rest[i + "struct Params {".len()..];
        let end = body.find('}').expect("a struct's closing brace");
        let fields = body[..end]
            .split(',')
            .filter_map(|f| {
                let (name, ty) = f.split_once(':')?;
                Some((name.trim().to_string(), ty.trim().to_string()))
            })
            .collect();
        found.push(fields);
        rest = &body[end..];
    }
    found
}

fn scalar(ty: &str) -> Option<&str> {
    ["u32", "i32", "f32"].into_iter().find(|&s| s == ty)
}

/// Lays out Rust `repr(C)` fields of 4-byte scalars and arrays of them; returns the fields and size.
fn rust_layout(fields: &[(String, String)]) -> Result<(Vec<Field>, usize), String> {
    let mut offset = 0;
    let mut out = Vec::new();
    for (name, ty) in fields {
        let (elem, count) = if let Some(s) = scalar(ty) {
            (s, 1)
        } else if let Some(inner) = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            let (e, n) = inner
                .split_once(';')
                .ok_or_else(|| format!("array type {ty}"))?;
            let e = scalar(e.trim()).ok_or_else(|| format!("array element of {ty}"))?;
            (e, n.trim().parse::<usize>().map_err(|e| e.to_string())?)
        } else {
            return Err(format!(
                "field {name}: type {ty} is not laid out by this test"
            ));
        };
        out.push(Field {
            name: name.clone(),
            offset,
            elem: elem.to_string(),
            count,
        });
        offset += 4 * count;
    }
    Ok((out, offset))
}

/// Lays out WGSL struct fields (scalars and vectors, with WGSL's alignment rules).
fn wgsl_layout(fields: &[(String, String)]) -> Result<(Vec<Field>, usize), String> {
    let mut offset: usize = 0;
    let mut max_align: usize = 4;
    let mut out = Vec::new();
    for (name, ty) in fields {
        let (elem, count, align, size) = if let Some(s) = scalar(ty) {
            (s, 1, 4, 4)
        } else if let Some(rest) = ty.strip_prefix("vec") {
            let n: usize = rest[..1].parse().map_err(|_| format!("type {ty}"))?;
            let e = rest[1..]
                .strip_prefix('<')
                .and_then(|r| r.strip_suffix('>'))
                .and_then(|e| scalar(e.trim()))
                .ok_or_else(|| format!("type {ty}"))?;
            (e, n, if n == 2 { 8 } else { 16 }, 4 * n)
        } else {
            return Err(format!(
                "field {name}: type {ty} is not laid out by this test"
            ));
        };
        offset = offset.next_multiple_of(align);
        max_align = max_align.max(align);
        out.push(Field {
            name: name.clone(),
            offset,
            elem: elem.to_string(),
            count,
        });
        offset += size;
    }
    Ok((out, offset.next_multiple_of(max_align)))
}

/// Compares the two layouts; padding fields (names starting with `_`) are only counted in the size.
fn compare(rust: &[(String, String)], wgsl: &[(String, String)]) -> Result<(), String> {
    let (r, r_size) = rust_layout(rust)?;
    let (w, w_size) = wgsl_layout(wgsl)?;
    let named = |v: Vec<Field>| -> Vec<Field> {
        v.into_iter().filter(|f| !f.name.starts_with('_')).collect()
    };
    let (r, w) = (named(r), named(w));
    for i in 0..r.len().max(w.len()) {
        match (r.get(i), w.get(i)) {
            (Some(a), Some(b)) if a == b => {}
            (a, b) => return Err(format!("field {i}: Rust {a:?}, WGSL {b:?}")),
        }
    }
    if r_size != w_size {
        return Err(format!("size: Rust {r_size} bytes, WGSL {w_size}"));
    }
    Ok(())
}

/// The shader files a kernel module includes with `include_str!("../../shaders/NAME.wgsl")`.
fn included_shaders(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("include_str!(\"../../shaders/") {
        let tail = &rest[i + "include_str!(\"../../".len()..];
        let end = tail.find('"').expect("a closing quote");
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

#[test]
fn every_kernel_params_matches_its_wgsl_struct() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    let mut problems = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(root.join("src/kernels"))
        .expect("src/kernels")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    entries.sort();
    for path in entries {
        let code = std::fs::read_to_string(&path).expect("a kernel module");
        let rust = params_body(&code);
        let Some(rust) = rust.first() else { continue };
        let mut shaders = included_shaders(&code);
        shaders.sort();
        shaders.dedup();
        let mut wgsl = Vec::new();
        for s in &shaders {
            let text = std::fs::read_to_string(root.join(s)).expect("an included shader");
            wgsl.extend(params_body(&text));
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        match wgsl.as_slice() {
            [one] => {
                if let Err(e) = compare(rust, one) {
                    problems.push(format!("{name} against {shaders:?}: {e}"));
                }
                checked += 1;
            }
            other => problems.push(format!(
                "{name}: {} WGSL Params structs in {shaders:?}, expected one",
                other.len()
            )),
        }
    }
    assert!(
        problems.is_empty(),
        "Params disagree:\n{}",
        problems.join("\n")
    );
    // Every kernel module with uniforms (16 on 2026-12-05): the walk must not quietly find none.
    assert!(checked >= 16, "only {checked} kernel modules checked");
}

/// The checker itself: it accepts a matching pair (a vec4 against a 4-element array, padding named
/// differently) and names a swapped field, a type change, and a size change.
#[test]
fn the_checker_sees_disagreements() {
    let f = |s: &str| params_body(s).remove(0);
    let rust = f("struct Params { a: u32, b: f32, _pad: [u32; 2], crop: [u32; 4], }");
    let good = f("struct Params { a: u32, b: f32, _p0: u32, _p1: u32, crop: vec4<u32>, }");
    assert_eq!(compare(&rust, &good), Ok(()));
    let swapped = f("struct Params { b: f32, a: u32, _p0: u32, _p1: u32, crop: vec4<u32>, }");
    assert!(compare(&rust, &swapped).is_err());
    let typed = f("struct Params { a: u32, b: u32, _p0: u32, _p1: u32, crop: vec4<u32>, }");
    assert!(compare(&rust, &typed).is_err());
    // Without the padding the vec4 still lands at 16 (alignment), but a missing pad in Rust would not.
    let unpadded = f("struct Params { a: u32, b: f32, crop: vec4<u32>, }");
    assert_eq!(compare(&rust, &unpadded), Ok(()));
    let rust_unpadded = f("struct Params { a: u32, b: f32, crop: [u32; 4], }");
    assert!(compare(&rust_unpadded, &good).is_err());
    let longer =
        f("struct Params { a: u32, b: f32, _p0: u32, _p1: u32, crop: vec4<u32>, x: u32, }");
    assert!(compare(&rust, &longer).is_err());
}

/// `@group(0) @binding(N) var<…> name` declarations of a WGSL source: (name, N).
fn wgsl_bindings(code: &str) -> Vec<(String, u32)> {
    code.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("@group(0) @binding(")?;
            let (n, rest) = rest.split_once(')')?;
            let name = rest.split_once('>')?.1.trim().split(':').next()?.trim();
            Some((name.to_string(), n.parse().ok()?))
        })
        .collect()
}

/// `pub const NAME: u32 = N;` in a kernel module's `mod slot { … }`: (NAME, N).
fn rust_slots(code: &str) -> Option<Vec<(String, u32)>> {
    let start = code.find("mod slot {")?;
    let body = &code[start..];
    let body = &body[..body.find("\n}").expect("mod slot's closing brace")];
    Some(
        body.lines()
            .filter_map(|l| {
                let rest = l.trim().strip_prefix("pub const ")?;
                let (name, rest) = rest.split_once(": u32 = ")?;
                Some((name.to_string(), rest.trim_end_matches(';').parse().ok()?))
            })
            .collect(),
    )
}

/// The binding index a kernel module passes to a shader is a name, never a bare number: a module
/// that places buffers by index (`dispatch_at`) declares `mod slot { pub const NAME: u32 = N; }`,
/// and every NAME is the WGSL variable of that name (`PARAMS` for the uniform `p`) at that index,
/// every binding of its shaders is named, and no `(3, x.buffer())` literal is left. Modules that
/// bind in order (`dispatch`: buffers 0..n, then the uniform) must have shaders laid out so: the
/// storage buffers first and contiguous, the uniform `p` right after them.
#[test]
fn binding_indices_are_named_and_match_the_shaders() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    let mut named = 0;
    let mut files: Vec<_> = std::fs::read_dir(root.join("src/kernels"))
        .expect("src/kernels")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    for path in files {
        let code = std::fs::read_to_string(&path).expect("a kernel module");
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let mut shaders = included_shaders(&code);
        shaders.sort();
        shaders.dedup();
        let mut declared: Vec<(String, u32)> = Vec::new();
        for s in &shaders {
            let text = std::fs::read_to_string(root.join(s)).expect("an included shader");
            for b in wgsl_bindings(&text) {
                if !declared.contains(&b) {
                    declared.push(b);
                }
            }
        }
        match rust_slots(&code) {
            Some(slots) => {
                named += 1;
                // The slot name each declared binding must have: its WGSL name in capitals
                // (`PARAMS` for the uniform `p`).
                let wanted: Vec<(String, u32)> = declared
                    .iter()
                    .map(|(w, n)| {
                        let name = if w == "p" {
                            "PARAMS".into()
                        } else {
                            w.to_uppercase()
                        };
                        (name, *n)
                    })
                    .collect();
                for (name, n) in &slots {
                    if !wanted.contains(&(name.clone(), *n)) {
                        problems.push(format!(
                            "{file}: slot::{name} = {n}, but {shaders:?} declare {declared:?}"
                        ));
                    }
                }
                for (name, n) in &wanted {
                    if !slots.contains(&(name.clone(), *n)) {
                        problems.push(format!("{file}: binding {n} has no slot::{name}"));
                    }
                }
                for (i, line) in code.lines().enumerate() {
                    // `(3, x.buffer())` anywhere on the line.
                    let literal = line.match_indices('(').any(|(at, _)| {
                        line[at + 1..].split_once(", ").is_some_and(|(n, rest)| {
                            n.parse::<u32>().is_ok()
                                && rest
                                    .split(')')
                                    .next()
                                    .is_some_and(|r| r.ends_with(".buffer("))
                        })
                    });
                    if literal {
                        problems.push(format!(
                            "{file}:{}: a bare binding index: {}",
                            i + 1,
                            line.trim()
                        ));
                    }
                }
            }
            None if code.contains("dispatch_at(") => {
                problems.push(format!(
                    "{file} binds by index (dispatch_at) without a mod slot"
                ));
            }
            None => {
                // In order: storage 0..n, the uniform p at n, in each shader on its own.
                for s in &shaders {
                    let text = std::fs::read_to_string(root.join(s)).expect("a shader");
                    let b = wgsl_bindings(&text);
                    let Some(&(_, p)) = b.iter().find(|(n, _)| n == "p") else {
                        continue;
                    };
                    let mut storage: Vec<u32> = b
                        .iter()
                        .filter(|(n, _)| n != "p")
                        .map(|&(_, i)| i)
                        .collect();
                    storage.sort_unstable();
                    if storage != (0..p).collect::<Vec<_>>() {
                        problems.push(format!(
                            "{file} binds in order, but {s} has the uniform at {p} and storage at \
                             {storage:?}"
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(named >= 1, "no kernel module names its bindings");
}
