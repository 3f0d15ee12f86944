//! JSON values with insertion-ordered dicts, a parser and writers that match Python's `json`.
//!
//! `parse` accepts what `json.loads` accepts (including `NaN`, `Infinity`, `-Infinity`), except
//! lone surrogate escapes and integers outside i64, which it refuses with a clear error.
//! `to_string` writes like `json.dumps(v, ensure_ascii=False)`; `to_string_ascii` like
//! `json.dumps(v)`. Neither sorts keys: sort a copy with `sorted` first for `sort_keys=True`.

use std::fmt::Write as _;

/// A JSON value; dicts keep their insertion order like Python's.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Dict(Map),
}

/// An insertion-ordered dict with unique keys.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Map(pub Vec<(String, Value)>);

impl Map {
    pub fn new() -> Map {
        Map(Vec::new())
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Replace the value in place when `key` is present (as a Python dict does), else append.
    pub fn insert(&mut self, key: &str, value: Value) {
        match self.get_mut(key) {
            Some(slot) => *slot = value,
            None => self.0.push((key.to_string(), value)),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let index = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(index).1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, (String, Value)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// A number (an int or a float, not a bool) as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&Vec<Value>> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&Map> {
        match self {
            Value::Dict(map) => Some(map),
            _ => None,
        }
    }

    /// Dict lookup; None for a missing key or a value that is not a dict.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict().and_then(|map| map.get(key))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<Map> for Value {
    fn from(map: Map) -> Value {
        Value::Dict(map)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Value {
        Value::List(items)
    }
}

/// A copy of `value` with every dict's keys sorted (for `json.dumps(..., sort_keys=True)`).
pub fn sorted(value: &Value) -> Value {
    match value {
        Value::Dict(map) => {
            let mut pairs: Vec<(String, Value)> =
                map.iter().map(|(k, v)| (k.clone(), sorted(v))).collect();
            pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            Value::Dict(Map(pairs))
        }
        Value::List(items) => Value::List(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Writer

/// `json.dumps(value, ensure_ascii=False)`.
/// Python's truthiness: None, False, 0, 0.0 and empty strings, lists and dicts are false.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::Float(f) => *f != 0.0,
        Value::Str(s) => !s.is_empty(),
        Value::List(items) => !items.is_empty(),
        Value::Dict(map) => !map.is_empty(),
    }
}

pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, false);
    out
}

/// `json.dumps(value)` (non-ASCII characters escaped as `\uXXXX`).
pub fn to_string_ascii(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, true);
    out
}

fn write_value(out: &mut String, value: &Value, ascii: bool) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Int(i) => {
            let _ = write!(out, "{}", i);
        }
        Value::Float(f) => out.push_str(&float_repr(*f)),
        Value::Str(s) => write_str(out, s, ascii),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item, ascii);
            }
            out.push(']');
        }
        Value::Dict(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, key, ascii);
                out.push_str(": ");
                write_value(out, item, ascii);
            }
            out.push('}');
        }
    }
}

fn write_str(out: &mut String, s: &str, ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ascii && (c as u32) > 0x7e) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{:04x}", unit);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)` as `json.dumps` writes it (`1.0`, `1e-05`, `1e+16`, `Infinity`).
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    // `{:e}` gives the shortest round-tripping digits, like Python's repr: "-1.25e-7".
    let sci = format!("{:e}", f);
    let (mantissa, exp) = sci.split_at(sci.find('e').unwrap_or(sci.len()));
    let exp: i32 = exp[1..].parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-4..16).contains(&exp) {
        let mut m = digits[..1].to_string();
        if digits.len() > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{}{}e{}{:02}", sign, m, esign, exp.abs());
    }
    if exp < 0 {
        let zeros = "0".repeat((-exp - 1) as usize);
        return format!("{}0.{}{}", sign, zeros, digits);
    }
    let point = exp as usize + 1;
    if digits.len() <= point {
        let zeros = "0".repeat(point - digits.len());
        format!("{}{}{}.0", sign, digits, zeros)
    } else {
        format!("{}{}.{}", sign, &digits[..point], &digits[point..])
    }
}

// ---------------------------------------------------------------------------------------------
// Python's str() and repr() of a value, for messages that quote one

/// Python's `repr(value)` of the value `json.loads` would give: `None`, `True`, `'text'`, `{'k': 1}`.
pub fn py_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.is_nan() => "nan".to_string(),
        Value::Float(f) if f.is_infinite() => if *f > 0.0 { "inf" } else { "-inf" }.to_string(),
        Value::Float(f) => float_repr(*f),
        Value::Str(s) => py_repr_str(s),
        Value::List(items) => {
            let inner: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Dict(map) => {
            let inner: Vec<String> =
                map.iter().map(|(k, v)| format!("{}: {}", py_repr_str(k), py_repr(v))).collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Python's `str(value)`: a string as itself, anything else as its repr.
pub fn py_str(value: &Value) -> String {
    match value {
        Value::Str(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `type(value).__name__` of the value `json.loads` would give.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float",
        Value::Str(_) => "str",
        Value::List(_) => "list",
        Value::Dict(_) => "dict",
    }
}

/// Python's `repr(str)`: single quotes unless the text has one and no double quote.
pub fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::new();
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !is_printable(c) => {
                let code = c as u32;
                let _ = match code {
                    0..=0xff => write!(out, "\\x{:02x}", code),
                    0x100..=0xffff => write!(out, "\\u{:04x}", code),
                    _ => write!(out, "\\U{:08x}", code),
                };
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// An approximation of Python's `str.isprintable` for one character: controls, separators
/// other than the space, format characters and private use are not printable.
fn is_printable(c: char) -> bool {
    let code = c as u32;
    !matches!(code,
        0..=0x1f | 0x7f..=0xa0 | 0xad | 0x1680 | 0x2000..=0x200f | 0x2028..=0x202f
        | 0x205f..=0x206f | 0x3000 | 0xe000..=0xf8ff | 0xfeff | 0xfff9..=0xfffb)
}

// ---------------------------------------------------------------------------------------------
// Parser

/// Parse one JSON document; errors name the byte offset.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut parser = Parser { bytes: text.as_bytes(), text, pos: 0 };
    parser.skip_ws();
    let value = parser.value()?;
    parser.skip_ws();
    if parser.pos != parser.bytes.len() {
        return Err(parser.error("extra data"));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, what: &str) -> String {
        format!("invalid JSON: {} at byte {}", what, self.pos)
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some(b'{') => self.dict(),
            Some(b'[') => self.list(),
            Some(b'"') => self.string().map(Value::Str),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => self.literal(),
        }
    }

    fn literal(&mut self) -> Result<Value, String> {
        let words: [(&str, Value); 6] = [
            ("null", Value::Null),
            ("true", Value::Bool(true)),
            ("false", Value::Bool(false)),
            ("NaN", Value::Float(f64::NAN)),
            ("Infinity", Value::Float(f64::INFINITY)),
            ("-Infinity", Value::Float(f64::NEG_INFINITY)),
        ];
        for (word, value) in words {
            if self.eat(word) {
                return Ok(value);
            }
        }
        Err(self.error("expecting value"))
    }

    fn dict(&mut self) -> Result<Value, String> {
        self.pos += 1;
        let mut map = Map::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Dict(map));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expecting property name enclosed in double quotes"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.error("expecting ':' delimiter"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value()?;
            map.insert(&key, value);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Dict(map));
                }
                _ => return Err(self.error("expecting ',' delimiter")),
            }
        }
    }

    fn list(&mut self) -> Result<Value, String> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::List(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::List(items));
                }
                _ => return Err(self.error("expecting ',' delimiter")),
            }
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        if self.text[self.pos..].starts_with("-Infinity") {
            return self.literal();
        }
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("expecting value")),
        }
        let mut is_float = false;
        if self.peek() == Some(b'.') && self.digit_at(self.pos + 1) {
            self.pos += 1;
            self.digits();
            is_float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            let mut end = self.pos + 1;
            if let Some(b'+' | b'-') = self.bytes.get(end) {
                end += 1;
            }
            if self.digit_at(end) {
                self.pos = end;
                self.digits();
                is_float = true;
            }
        }
        let text = &self.text[start..self.pos];
        if is_float {
            return text.parse().map(Value::Float).map_err(|_| self.error("bad number"));
        }
        text.parse().map(Value::Int).map_err(|_| {
            format!("invalid JSON: integer {} out of range at byte {}", text, start)
        })
    }

    fn digit_at(&self, pos: usize) -> bool {
        matches!(self.bytes.get(pos), Some(b'0'..=b'9'))
    }

    fn digits(&mut self) {
        while self.digit_at(self.pos) {
            self.pos += 1;
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[start..self.pos]);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => out.push(self.escape()?),
                Some(_) => return Err(self.error("invalid control character in string")),
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    fn escape(&mut self) -> Result<char, String> {
        self.pos += 1;
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => return self.unicode_escape(),
            _ => return Err(self.error("invalid \\escape")),
        };
        self.pos += 1;
        Ok(c)
    }

    /// `\uXXXX`, combining a surrogate pair into one character.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let at = self.pos - 1;
        let first = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&first) {
            if !self.text[self.pos..].starts_with("\\u") {
                return Err(format!("invalid JSON: lone surrogate \\u{:04x} at byte {}", first, at));
            }
            self.pos += 1;
            let second = self.hex4()?;
            if !(0xDC00..0xE000).contains(&second) {
                return Err(format!("invalid JSON: lone surrogate \\u{:04x} at byte {}", first, at));
            }
            0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        } else {
            first
        };
        char::from_u32(code)
            .ok_or_else(|| format!("invalid JSON: lone surrogate \\u{:04x} at byte {}", code, at))
    }

    /// Four hex digits after the `u` at `self.pos`; leaves `pos` after them.
    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self.text.get(self.pos + 1..self.pos + 5).unwrap_or("");
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.error("invalid \\uXXXX escape"));
        }
        self.pos += 5;
        Ok(u32::from_str_radix(digits, 16).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) {
        assert_eq!(to_string(&parse(text).unwrap()), text);
    }

    #[test]
    fn round_trips_nested_values_in_order() {
        round_trip(r#"{"b": 1, "a": [true, false, null, -3, "x"], "c": {"d": {}, "e": []}}"#);
        round_trip("[1.5, -0.0, 1e-05, 1e+16, 123456789.125, NaN, Infinity, -Infinity]");
    }

    #[test]
    fn floats_print_like_python_repr() {
        let cases = [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.5e300, "1.5e+300"),
            (-2.5e-7, "-2.5e-07"),
            (123.456, "123.456"),
            (0.0, "0.0"),
            (1234567890123456.7, "1234567890123456.8"),
        ];
        for (f, want) in cases {
            assert_eq!(float_repr(f), want, "{}", f);
        }
    }

    #[test]
    fn parses_numbers_as_python_does() {
        assert_eq!(parse("10").unwrap(), Value::Int(10));
        assert_eq!(parse("-0").unwrap(), Value::Int(0));
        assert_eq!(parse("1E2").unwrap(), Value::Float(100.0));
        assert_eq!(parse("2.50").unwrap(), Value::Float(2.5));
        assert!(parse("99999999999999999999").unwrap_err().contains("out of range"));
        assert!(parse("01").is_err());
        assert!(parse("1.").is_err());
    }

    #[test]
    fn unicode_escapes_and_surrogate_pairs() {
        let v = parse(r#""a\u00e9\ud83d\ude00\n\"\\\/""#).unwrap();
        assert_eq!(v, Value::from("aé😀\n\"\\/"));
        assert_eq!(to_string(&v), "\"aé😀\\n\\\"\\\\/\"");
        assert_eq!(to_string_ascii(&v), r#""a\u00e9\ud83d\ude00\n\"\\/""#);
        assert_eq!(to_string(&Value::from("\u{1}\u{7f}")), "\"\\u0001\u{7f}\"");
        assert_eq!(to_string_ascii(&Value::from("\u{7f}")), "\"\\u007f\"");
        assert!(parse(r#""\ud800""#).unwrap_err().contains("lone surrogate"));
        assert!(parse(r#""\ude00x""#).unwrap_err().contains("lone surrogate"));
    }

    #[test]
    fn errors_name_the_offset() {
        assert_eq!(parse("[1, }").unwrap_err(), "invalid JSON: expecting value at byte 4");
        assert_eq!(parse("{} x").unwrap_err(), "invalid JSON: extra data at byte 3");
        assert!(parse("\"a\nb\"").unwrap_err().contains("control character"));
        assert!(parse("{\"a\" 1}").unwrap_err().contains("':'"));
        assert!(parse("").is_err());
        assert!(parse("\"abc").unwrap_err().contains("unterminated"));
    }

    #[test]
    fn duplicate_keys_keep_first_position_last_value() {
        let v = parse(r#"{"a": 1, "b": 2, "a": 3}"#).unwrap();
        assert_eq!(to_string(&v), r#"{"a": 3, "b": 2}"#);
    }

    #[test]
    fn map_operations() {
        let mut m = Map::new();
        m.insert("x", Value::from(1));
        m.insert("y", Value::from("s"));
        m.insert("x", Value::from(true));
        assert_eq!(to_string(&Value::from(m.clone())), r#"{"x": true, "y": "s"}"#);
        assert_eq!(m.remove("x"), Some(Value::Bool(true)));
        assert!(!m.contains_key("x"));
        assert_eq!(m.len(), 1);
        assert_eq!(Value::from(m).get("y").and_then(Value::as_str), Some("s"));
    }

    #[test]
    fn python_repr_and_str() {
        let v = parse(r#"{"a": [null, true, 1.0, "it's", "x\"y'z", "t\tab\u0001é"]}"#).unwrap();
        assert_eq!(py_repr(&v), r#"{'a': [None, True, 1.0, "it's", 'x"y\'z', 't\tab\x01é']}"#);
        assert_eq!(py_str(&Value::from("plain")), "plain");
        assert_eq!(py_str(&Value::Int(5)), "5");
        assert_eq!(py_repr(&Value::Float(f64::INFINITY)), "inf");
    }

    #[test]
    fn sorted_sorts_nested_keys() {
        let v = parse(r#"{"b": [{"z": 1, "a": 2}], "a": null}"#).unwrap();
        assert_eq!(to_string(&sorted(&v)), r#"{"a": null, "b": [{"a": 2, "z": 1}]}"#);
    }
}
