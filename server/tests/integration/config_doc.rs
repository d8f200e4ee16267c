//! `docs/configuration.md` and the configuration structs cannot drift apart.
//!
//! - Every key the structs accept is in one of the page's tables, and every key in a table
//!   is accepted by the structs. The structs' keys are read from serde itself: a recording
//!   [`Deserializer`] walks [`FileConfig`] and notes the field names its derived
//!   `Deserialize` asks for, so a new field, a rename or a removed one fails here.
//! - The page's complete example sets every key and loads through [`FileConfig`] (which
//!   refuses unknown keys).
//! - Every `serve` flag and every `HANKO_*` environment variable the code reads is on the
//!   page.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::CommandFactory as _;
use hanko_server::cli::Cli;
use hanko_server::config::FileConfig;
use serde::Deserialize as _;
use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer as _, MapAccess, SeqAccess, Visitor,
};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn page() -> String {
    std::fs::read_to_string(workspace().join("docs/configuration.md")).unwrap()
}

/// Keys named in the first column of the page's tables: "| `hsm.workers` | ...".
/// Array-of-tables entries are written `keys[].label`.
fn documented_keys(page: &str) -> BTreeSet<String> {
    page.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(key, _)| key.to_owned())
        // Flags, and environment variables (`HANKO_PIN`, `RUST_LOG`, ...: upper case).
        .filter(|k| !k.starts_with("--") && !k.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect()
}

/// The fenced block that starts with `# hanko: complete example`.
fn complete_example(page: &str) -> String {
    let start = page
        .find("```toml\n# hanko: complete example")
        .expect("the page has a complete example");
    let body = &page[start + "```toml\n".len()..];
    body[..body.find("```").unwrap()].to_owned()
}

/// Every key the configuration structs accept, with the same spelling as the page.
fn struct_keys() -> BTreeSet<String> {
    let mut rec = Recorder::default();
    FileConfig::deserialize(Walk {
        path: String::new(),
        rec: &mut rec,
    })
    .expect("the recording deserializer walks FileConfig");
    // A key that holds a section (`hsm`, `keys[]`) is not itself a setting.
    let sections: BTreeSet<String> = rec
        .keys
        .iter()
        .filter_map(|k| k.rsplit_once('.').map(|(p, _)| p.to_owned()))
        .flat_map(|s| [s.trim_end_matches("[]").to_owned(), s])
        .collect();
    rec.keys.difference(&sections).cloned().collect()
}

#[test]
fn every_struct_key_is_documented_and_every_documented_key_exists() {
    let documented = documented_keys(&page());
    let actual = struct_keys();
    assert!(actual.len() > 30, "the walk found too few keys: {actual:?}");
    let missing: Vec<_> = actual.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&actual).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/configuration.md and the config structs disagree:\n  \
         keys the structs accept but the page does not document: {missing:?}\n  \
         keys the page documents but the structs do not accept: {unknown:?}"
    );
}

#[test]
fn the_complete_example_loads_and_sets_every_key() {
    let example = complete_example(&page());
    let _: FileConfig = toml::from_str(&example).expect("the complete example loads");
    let value: toml::Table = toml::from_str(&example).unwrap();
    let mut set = BTreeSet::new();
    collect_toml_keys(&value, "", &mut set);
    // Keys that exclude each other: the example sets exactly one of each pair (the
    // other is still documented, see above), or it would not resolve.
    for (a, b) in EXCLUSIVE {
        assert!(
            set.contains(*a) != set.contains(*b),
            "the complete example must set exactly one of {a} and {b}"
        );
    }
    let missing: Vec<_> = struct_keys()
        .difference(&set)
        .filter(|k| !EXCLUSIVE.iter().any(|(a, b)| k == a || k == b))
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "the complete example does not set {missing:?}"
    );
}

/// Pairs of keys a configuration may set only one of.
const EXCLUSIVE: &[(&str, &str)] = &[("tls.key", "tls.key_label")];

fn collect_toml_keys(t: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (k, v) in t {
        let path = format!("{prefix}{k}");
        match v {
            // policy_keys is a map whose keys are OIDs, renewal.algorithms one whose keys
            // are hash names: the setting is the map itself.
            toml::Value::Table(inner)
                if path != "tsa.policy_keys" && path != "renewal.algorithms" =>
            {
                collect_toml_keys(inner, &format!("{path}."), out)
            }
            toml::Value::Array(items)
                if items.iter().all(toml::Value::is_table) && !items.is_empty() =>
            {
                for item in items {
                    collect_toml_keys(item.as_table().unwrap(), &format!("{path}[]."), out);
                }
            }
            _ => {
                out.insert(path);
            }
        }
    }
}

#[test]
fn every_serve_flag_is_documented() {
    let page = page();
    let cmd = Cli::command();
    let serve = cmd
        .get_subcommands()
        .find(|c| c.get_name() == "serve")
        .expect("a serve subcommand");
    for arg in serve.get_arguments() {
        if let Some(long) = arg.get_long() {
            if long == "help" {
                continue;
            }
            assert!(
                page.contains(&format!("`--{long}`")),
                "flag --{long} of `hanko serve` is not in docs/configuration.md"
            );
        }
    }
}

#[test]
fn every_environment_variable_read_is_documented() {
    let page = page();
    let mut names = BTreeSet::new();
    for krate in ["server", "hsm", "store", "tsa", "pki"] {
        scan_for_env_names(&workspace().join(krate).join("src"), &mut names);
    }
    assert!(names.contains("HANKO_PIN"), "scan found {names:?}");
    for name in names {
        assert!(
            page.contains(&format!("| `{name}` |")),
            "{name} is read by the code but not in docs/configuration.md's Environment table"
        );
    }
}

/// `"HANKO_..."` string literals in the Rust sources below `dir`.
fn scan_for_env_names(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            scan_for_env_names(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for piece in text.split("\"HANKO_").skip(1) {
                let name: String = piece
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || *c == '_' || c.is_ascii_digit())
                    .collect();
                if piece[name.len()..].starts_with('"') && !name.is_empty() {
                    out.insert(format!("HANKO_{name}"));
                }
            }
        }
    }
}

/// The key paths the derived `Deserialize` impls asked for.
#[derive(Default)]
struct Recorder {
    keys: BTreeSet<String>,
}

/// A deserializer that answers every request with a plausible value and records the
/// struct fields asked for on the way. Strings are a socket address, which is also a
/// valid string and path; enums take their first variant; sequences hold one element;
/// maps none (a map's keys are data, not settings).
struct Walk<'r> {
    path: String,
    rec: &'r mut Recorder,
}

#[derive(Debug)]
struct WalkError(String);

impl std::fmt::Display for WalkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for WalkError {}
impl de::Error for WalkError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        WalkError(msg.to_string())
    }
}

const SAMPLE_STR: &str = "127.0.0.1:3161";

impl<'de> Deserializer<'de> for Walk<'_> {
    type Error = WalkError;

    fn deserialize_any<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, WalkError> {
        Err(WalkError(format!(
            "{}: a self-describing type; teach the walk what it is",
            self.path
        )))
    }
    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_bool(false)
    }
    fn deserialize_i8<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_i64(1)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_i64(1)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_i64(1)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_i64(1)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_u64(1)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_u64(1)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_u64(1)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_u64(1)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_f64(1.0)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_f64(1.0)
    }
    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_char('x')
    }
    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_str(SAMPLE_STR)
    }
    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_str(SAMPLE_STR)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_bytes(b"x")
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_bytes(b"x")
    }
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_some(self)
    }
    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_unit()
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, WalkError> {
        v.visit_unit()
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, WalkError> {
        v.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_seq(OneElement {
            path: format!("{}[]", self.path),
            rec: Some(self.rec),
        })
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, WalkError> {
        self.deserialize_seq(v)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, WalkError> {
        self.deserialize_seq(v)
    }
    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        self.rec.keys.insert(self.path);
        v.visit_map(Fields {
            prefix: String::new(),
            fields: &[],
            next: 0,
            rec: None,
        })
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, WalkError> {
        let prefix = if self.path.is_empty() {
            String::new()
        } else {
            format!("{}.", self.path)
        };
        for f in fields {
            self.rec.keys.insert(format!("{prefix}{f}"));
        }
        v.visit_map(Fields {
            prefix,
            fields,
            next: 0,
            rec: Some(self.rec),
        })
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, WalkError> {
        let first = variants.first().copied().unwrap_or_default();
        v.visit_enum(first.into_deserializer())
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_str(SAMPLE_STR)
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, WalkError> {
        v.visit_unit()
    }
}

/// The fields of one struct, each asked for once.
struct Fields<'r> {
    prefix: String,
    fields: &'static [&'static str],
    next: usize,
    rec: Option<&'r mut Recorder>,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = WalkError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, WalkError> {
        let Some(name) = self.fields.get(self.next) else {
            return Ok(None);
        };
        seed.deserialize(de::value::StrDeserializer::<WalkError>::new(name))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, WalkError> {
        let name = self.fields[self.next];
        self.next += 1;
        let rec = self.rec.as_deref_mut().expect("a struct has a recorder");
        seed.deserialize(Walk {
            path: format!("{}{name}", self.prefix),
            rec,
        })
    }
}

/// A sequence of one element, walked like any value.
struct OneElement<'r> {
    path: String,
    rec: Option<&'r mut Recorder>,
}

impl<'de> SeqAccess<'de> for OneElement<'_> {
    type Error = WalkError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, WalkError> {
        match self.rec.take() {
            None => Ok(None),
            Some(rec) => seed
                .deserialize(Walk {
                    path: self.path.clone(),
                    rec,
                })
                .map(Some),
        }
    }
}
