//! The CLI's modules follow its commands, and no two import each other, directly or through
//! others: what several commands share lives in modules that import no command, and no module
//! reaches back into `main`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The code of a file: its tests and comments left out.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let code = text.split("#[cfg(test)]").next().unwrap();
    code.lines()
        .map(|l| l.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each module of `cli/src` (but `main`; a directory is one module, all its files) and the
/// modules it uses.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if path.is_dir() {
            let mut code = String::new();
            for file in std::fs::read_dir(&path).unwrap() {
                let file = file.unwrap().path();
                if file.extension().is_some_and(|e| e == "rs") {
                    code.push_str(&code_of(&file));
                    code.push('\n');
                }
            }
            sources.insert(name, code);
        } else if path.extension().is_some_and(|e| e == "rs") && name != "main" {
            sources.insert(name, code_of(&path));
        }
    }
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    sources
        .iter()
        .map(|(name, code)| {
            let mut used = BTreeSet::new();
            for (at, _) in code.match_indices("crate::") {
                let rest = &code[at + "crate::".len()..];
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => group[..group.find('}').unwrap()]
                        .split(',')
                        .map(|p| p.trim().split("::").next().unwrap().trim())
                        .collect(),
                    None => vec![rest
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap()],
                };
                for used_name in names {
                    assert!(
                        used_name.is_empty() || modules.contains(used_name),
                        "{name} uses crate::{used_name}: an item of main, not a module"
                    );
                    if !used_name.is_empty() && used_name != name {
                        used.insert(used_name.to_owned());
                    }
                }
            }
            (name.clone(), used)
        })
        .collect()
}

#[test]
fn no_module_imports_itself_through_others() {
    let graph = imports();
    assert!(graph.len() > 10, "{graph:?}");
    // Depth-first, keeping the path: a module met again on it closes a cycle.
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        cycles: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|m| m == module) {
            cycles.push(format!("{} -> {module}", path[at..].join(" -> ")));
            return;
        }
        if !done.insert(module.to_owned()) {
            return;
        }
        path.push(module.to_owned());
        for next in &graph[module] {
            visit(next, graph, path, done, cycles);
        }
        path.pop();
    }
    let mut cycles = Vec::new();
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(cycles.is_empty(), "import cycles: {cycles:?}");
}

#[test]
fn shared_modules_import_no_command() {
    let graph = imports();
    let commands = [
        "query",
        "report",
        "reprice",
        "tail",
        "verify",
        "keygen",
        "show",
        "retention",
        "erase",
        "migrate",
    ];
    for (module, used) in &graph {
        if commands.contains(&module.as_str()) || module == "html" {
            continue;
        }
        let commands_used: Vec<&String> = used
            .iter()
            .filter(|u| commands.contains(&u.as_str()))
            .collect();
        assert!(
            commands_used.is_empty(),
            "{module} is shared but imports the command(s) {commands_used:?}"
        );
    }
}
