//! Nothing a user reads names the macro's private support module: no provider crate or
//! example uses `token_core::__private`, and no compile error the UI tests pin names it
//! (a trait a diagnostic names is re-exported where users find it, such as
//! `token_core::codec`, so rustc names it by that path or its bare name).

use std::path::{Path, PathBuf};

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name != "target") {
                files(&path, ext, out);
            }
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

#[test]
fn no_diagnostic_provider_or_example_names_the_private_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = Vec::new();
    files(&root.join("tests/ui"), "stderr", &mut checked);
    let diagnostics = checked.len();
    files(&root.join("providers"), "rs", &mut checked);
    files(&root.join("examples"), "rs", &mut checked);
    assert!(
        diagnostics > 50,
        "the UI tests' diagnostics are found: {diagnostics}"
    );
    let naming: Vec<_> = checked
        .iter()
        .filter(|path| {
            std::fs::read_to_string(path)
                .expect("read a source or a diagnostic")
                .contains("__private")
        })
        .collect();
    assert!(naming.is_empty(), "these name `__private`: {naming:?}");
}
