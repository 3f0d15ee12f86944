//! Reading a native artifact (docs/native.md "The native artifact") and the options of a run.

use crate::json::{self, Map, Value};
use std::io::Read;
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "rustle-native";
pub const VERSION: i64 = 1;

static EMPTY: Map = Map(Vec::new());

/// What `run` was asked to do, shared by the command line, the agent and the executor.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunOptions {
    pub check: bool,
    pub diff: bool,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub journal: Option<PathBuf>,
    pub run_id: String,
    pub verbosity: i64,
}

/// Tag lists as the Python cli's `_csv`: every value split on commas, parts stripped, empties dropped.
pub fn csv(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// A parsed native artifact: the whole JSON document.
#[derive(Clone, Debug, PartialEq)]
pub struct Artifact {
    pub doc: Map,
}

impl Artifact {
    /// Read and check the artifact at `path` (its digest first: `check_digest`); errors
    /// start with the path.
    pub fn load(path: &Path) -> Result<Artifact, String> {
        let where_ = path.display();
        let bytes = std::fs::read(path)
            .map_err(|e| format!("{}: cannot read the artifact: {}", where_, crate::sys::strerror(&e)))?;
        check_digest(&bytes).map_err(|e| format!("{}: {}", where_, e))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| format!("{}: not a native artifact: invalid UTF-8 at byte {}", where_, e.utf8_error().valid_up_to()))?;
        let doc = match json::parse(&text) {
            Ok(Value::Dict(doc)) => doc,
            Ok(_) => return Err(format!("{}: not a native artifact: not a JSON object", where_)),
            Err(e) => return Err(format!("{}: not a native artifact: {}", where_, e)),
        };
        Artifact::from_doc(doc).map_err(|e| format!("{}: {}", where_, e))
    }

    /// Check the document's format, version and the types of the fields the runner reads.
    pub fn from_doc(doc: Map) -> Result<Artifact, String> {
        if doc.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(format!("not a native artifact: \"format\" is not \"{}\"", FORMAT));
        }
        match doc.get("version").and_then(Value::as_i64) {
            Some(VERSION) => {}
            other => {
                let found = other.map_or_else(|| "missing".to_string(), |v| v.to_string());
                return Err(format!(
                    "native artifact version {} is not supported: this runner reads version {}",
                    found, VERSION
                ));
            }
        }
        for (key, ok) in [
            ("runner", doc.get("runner").and_then(Value::as_str).is_some()),
            ("binary_name", doc.get("binary_name").and_then(Value::as_str).is_some()),
            ("hosts", doc.get("hosts").and_then(Value::as_dict).is_some()),
            ("files", doc.get("files").map_or(true, |v| v.as_dict().is_some())),
        ] {
            if !ok {
                return Err(format!("malformed native artifact: \"{}\" is missing or of the wrong type", key));
            }
        }
        Ok(Artifact { doc })
    }

    fn str_field(&self, key: &str) -> &str {
        self.doc.get(key).and_then(Value::as_str).unwrap_or("")
    }

    fn bool_field(&self, key: &str) -> bool {
        self.doc.get(key).and_then(Value::as_bool).unwrap_or(false)
    }

    /// The sha256 of the rustle-runner binary this artifact was compiled for.
    pub fn runner(&self) -> &str {
        self.str_field("runner")
    }

    pub fn binary_name(&self) -> &str {
        self.str_field("binary_name")
    }

    /// The host's entry (`{"plays": [...]}`), None for a host the artifact does not serve.
    pub fn host(&self, name: &str) -> Option<&Map> {
        self.doc.get("hosts").and_then(|hosts| hosts.get(name)).and_then(Value::as_dict)
    }

    /// The names of the hosts the artifact serves, sorted.
    pub fn host_names(&self) -> Vec<String> {
        let mut names: Vec<String> = match self.doc.get("hosts").and_then(Value::as_dict) {
            Some(hosts) => hosts.iter().map(|(k, _)| k.clone()).collect(),
            None => Vec::new(),
        };
        names.sort_unstable();
        names
    }

    /// Embedded files: sha256 -> base64.
    pub fn files(&self) -> &Map {
        self.doc.get("files").and_then(Value::as_dict).unwrap_or(&EMPTY)
    }

    pub fn check_mode(&self) -> bool {
        self.bool_field("check_mode")
    }

    pub fn diff_mode(&self) -> bool {
        self.bool_field("diff_mode")
    }
}

/// The document's last key, written by the compiler (compiler/native.py `seal`): the sha256
/// of every byte before it. Any change to the program or the embedded files after the build
/// shows as a mismatch; checking it costs one pass of sha256 over the file.
const DIGEST_KEY: &[u8] = b", \"payload_sha256\": \"";

/// Whether `bytes` (a whole native artifact) matches its `payload_sha256`.
pub fn check_digest(bytes: &[u8]) -> Result<(), String> {
    let tail = DIGEST_KEY.len() + 64 + 2;
    let n = bytes.len();
    if n < tail || !bytes.ends_with(b"\"}") || &bytes[n - tail..n - tail + DIGEST_KEY.len()] != DIGEST_KEY {
        return Err("not a sealed native artifact: it does not end with its \"payload_sha256\"".to_string());
    }
    let want = String::from_utf8_lossy(&bytes[n - 66..n - 2]).into_owned();
    let mut hash = crate::sha::Sha256::new();
    hash.update(&bytes[..n - tail]);
    let actual = hash.hex();
    if actual != want {
        return Err(format!(
            "does not match its digest: the document hashes to {}, its payload_sha256 says {} (it was changed after it was built)",
            actual, want
        ));
    }
    Ok(())
}

/// `text` with the `payload_sha256` the compiler appends (for tests).
#[cfg(test)]
pub fn seal(text: &str) -> String {
    let body = text.trim_end().strip_suffix('}').expect("a JSON object");
    let mut hash = crate::sha::Sha256::new();
    hash.update(body.as_bytes());
    format!("{}, \"payload_sha256\": \"{}\"}}", body, hash.hex())
}

/// Whether the file at `path` is a native artifact, judged by its first 64 bytes: the compiler
/// writes `{"format": "rustle-native"` first. False for unreadable files.
pub fn is_native(path: &Path) -> bool {
    let mut head = Vec::with_capacity(64);
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(_) => return false,
    };
    if file.take(64).read_to_end(&mut head).is_err() {
        return false;
    }
    let start = head.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(head.len());
    head[start..].starts_with(b"{\"format\": \"rustle-native\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        crate::test_dir("payload", name)
    }

    const DOC: &str = r#"{"format": "rustle-native", "version": 1, "runner": "abc", "binary_name": "site",
        "runtime_version": "0.1", "check_mode": true, "diff_mode": false,
        "hosts": {"web2": {"plays": []}, "web1": {"plays": [{"name": "p"}]}}, "files": {"e3": "eA=="}}"#;

    #[test]
    fn loads_an_artifact_and_reads_its_fields() {
        let dir = temp_dir("load");
        let path = dir.join("a");
        std::fs::write(&path, seal(DOC)).unwrap();
        let art = Artifact::load(&path).unwrap();
        assert_eq!(art.runner(), "abc");
        assert_eq!(art.binary_name(), "site");
        assert!(art.check_mode());
        assert!(!art.diff_mode());
        assert!(art.host("web1").unwrap().contains_key("plays"));
        assert!(art.host("db").is_none());
        assert_eq!(art.host_names(), vec!["web1", "web2"]);
        assert_eq!(art.files().get("e3"), Some(&Value::from("eA==")));
        assert!(is_native(&path));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_what_is_not_a_version_1_native_artifact() {
        let dir = temp_dir("refuse");
        let path = dir.join("a");
        let cases = [
            (seal(&DOC.replace("\"version\": 1", "\"version\": 2")), "version 2 is not supported"),
            (seal(&DOC.replace("rustle-native", "rustle-pyz")), "\"format\" is not"),
            (seal(&DOC.replace("\"runner\": \"abc\"", "\"runner\": 1")), "\"runner\" is missing"),
            ("[1]".to_string(), "not a sealed native artifact"),
            ("{".to_string(), "not a sealed native artifact"),
            (seal(DOC).replace("\"site\"", "\"sitf\""), "does not match its digest"),
        ];
        for (text, want) in cases {
            std::fs::write(&path, text).unwrap();
            let err = Artifact::load(&path).unwrap_err();
            assert!(err.starts_with(&format!("{}: ", path.display())), "{}", err);
            assert!(err.contains(want), "{} / {}", err, want);
        }
        let err = Artifact::load(&dir.join("missing")).unwrap_err();
        assert!(err.ends_with("cannot read the artifact: No such file or directory"), "{}", err);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn csv_splits_like_the_python_cli() {
        let values = vec!["a, b".to_string(), "".to_string(), "c,,".to_string()];
        assert_eq!(csv(&values), vec!["a", "b", "c"]);
    }

    #[test]
    fn is_native_sniffs_the_first_bytes() {
        let dir = temp_dir("sniff");
        let path = dir.join("a");
        std::fs::write(&path, "\n {\"format\": \"rustle-native\", \"version\": 1}").unwrap();
        assert!(is_native(&path));
        std::fs::write(&path, b"PK\x03\x04 zip").unwrap();
        assert!(!is_native(&path));
        std::fs::write(&path, "{\"version\": 1, \"format\": \"rustle-native\"}").unwrap();
        assert!(!is_native(&path));
        assert!(!is_native(&dir.join("missing")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
