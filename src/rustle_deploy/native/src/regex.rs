//! A backtracking matcher for regular expressions pre-parsed by Python's `re` parser.
//!
//! The controller parses a pattern with `re._parser.parse` and sends the tree as JSON (format in
//! docs/native.md and below); this module matches it with the semantics of Python's `re` without
//! flags. Two modes: `from_tree` matches `str` text (Unicode classes), `from_bytes_tree` matches
//! bytes as a `bytes` pattern does (ASCII classes, `.` is any byte but `\n`) — lineinfile's
//! patterns are bytes patterns in the Python runtime.
//!
//! Tree: a list of `[OP, ARG]` nodes — `LITERAL cp`, `NOT_LITERAL cp`, `ANY null`,
//! `IN [item…]` (items `LITERAL`, `RANGE [lo, hi]`, `NEGATE`, `CATEGORY name`),
//! `MAX_REPEAT`/`MIN_REPEAT`/`POSSESSIVE_REPEAT [min, max (-1 = unbounded), TREE]`,
//! `SUBPATTERN [group|null, TREE]`, `ATOMIC_GROUP TREE`, `BRANCH [TREE…]`, `AT code`,
//! `CATEGORY name`. Anything else is refused by `from_tree`.
//!
//! Positions are indices into the text's units (chars for `str`, bytes for `bytes`). A step
//! budget stops catastrophic backtracking with an error instead of running for hours.

use crate::json::Value;

/// How many node visits one search may make before it gives up.
const STEP_BUDGET: u64 = 5_000_000;
/// How deep a search may nest on the caller's stack (repeats of complex bodies recurse once
/// per iteration); a search that needs more is redone on a thread with a large stack.
const SHALLOW_DEPTH: u32 = 200;
const DEEP_DEPTH: u32 = 100_000;
const DEEP_STACK: usize = 1 << 30;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Category {
    Digit,
    NotDigit,
    Space,
    NotSpace,
    Word,
    NotWord,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum At {
    Beginning,
    End,
    BeginningLine,
    EndLine,
    BeginningString,
    EndString,
    Boundary,
    NonBoundary,
}

#[derive(Clone, Debug, PartialEq)]
enum Item {
    Literal(u32),
    Range(u32, u32),
    Category(Category),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Greed {
    Greedy,
    Lazy,
    Possessive,
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Literal(u32),
    NotLiteral(u32),
    Any,
    In { negate: bool, items: Vec<Item> },
    Category(Category),
    Repeat { min: usize, max: Option<usize>, greed: Greed, body: Vec<Node> },
    Group(Option<usize>, Vec<Node>),
    Atomic(Vec<Node>),
    Branch(Vec<Vec<Node>>),
    At(At),
}

/// Where a match may start and end: anywhere (`search`), at the start (`match`), or over the
/// whole text (`fullmatch`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Anchor {
    Search,
    Match,
    Full,
}

/// A compiled pattern.
#[derive(Clone, Debug)]
pub struct Regex {
    nodes: Vec<Node>,
    groups: usize,
    bytes: bool,
}

/// A successful search: unit offsets of the whole match and of each group (1-based groups at
/// index `n - 1`; `None` for a group that did not take part).
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    pub start: usize,
    pub end: usize,
    pub groups: Vec<Option<(usize, usize)>>,
}

impl Regex {
    /// A pattern matching `str` text (Python `re` with a `str` pattern, no flags).
    pub fn from_tree(tree: &Value) -> Result<Regex, String> {
        Regex::build(tree, false)
    }

    /// A pattern matching bytes (Python `re` with a `bytes` pattern, no flags); every code
    /// point in the tree must be a byte value (0-255).
    pub fn from_bytes_tree(tree: &Value) -> Result<Regex, String> {
        Regex::build(tree, true)
    }

    fn build(tree: &Value, bytes: bool) -> Result<Regex, String> {
        let mut groups = 0;
        let nodes = parse_seq(tree, bytes, &mut groups)?;
        Ok(Regex { nodes, groups, bytes })
    }

    /// Python's `pattern.search(text)` on a `str`; offsets are char indices.
    pub fn search(&self, text: &str) -> Result<Option<Match>, String> {
        let units: Vec<u32> = text.chars().map(|c| c as u32).collect();
        self.search_units(&units)
    }

    /// Python's `pattern.search(data)` on bytes; offsets are byte indices.
    pub fn search_bytes(&self, data: &[u8]) -> Result<Option<Match>, String> {
        let units: Vec<u32> = data.iter().map(|&b| b as u32).collect();
        self.search_units(&units)
    }

    fn search_units(&self, text: &[u32]) -> Result<Option<Match>, String> {
        self.search_from(text, 0, false)
    }

    /// The search `re.sub` makes from `from`: with `must_advance` (the previous match was
    /// empty and ended there), a match at `from` must not be empty (`_sre`'s must_advance).
    pub fn search_from(&self, text: &[u32], from: usize, must_advance: bool) -> Result<Option<Match>, String> {
        self.find(text, from, must_advance, Anchor::Search)
    }

    /// Python's `re.search`, `re.match` or `re.fullmatch` (`kind`) on a `str`: whether it matches.
    pub fn is_match(&self, text: &str, kind: &str) -> Result<bool, String> {
        let units: Vec<u32> = text.chars().map(|c| c as u32).collect();
        let anchor = match kind {
            "match" => Anchor::Match,
            "fullmatch" => Anchor::Full,
            _ => Anchor::Search,
        };
        Ok(self.find(&units, 0, false, anchor)?.is_some())
    }

    fn find(&self, text: &[u32], from: usize, must_advance: bool, anchor: Anchor) -> Result<Option<Match>, String> {
        match self.search_with(text, from, must_advance, anchor, SHALLOW_DEPTH) {
            Err(Failure::TooDeep) => std::thread::scope(|scope| {
                let deep = std::thread::Builder::new().stack_size(DEEP_STACK).spawn_scoped(scope, || self.search_with(text, from, must_advance, anchor, DEEP_DEPTH));
                match deep.map(|handle| handle.join()) {
                    Ok(Ok(outcome)) => outcome.map_err(Failure::message),
                    _ => Err(Failure::TooDeep.message()),
                }
            }),
            outcome => outcome.map_err(Failure::message),
        }
    }

    fn search_with(&self, text: &[u32], from: usize, must_advance: bool, anchor: Anchor, depth_limit: u32) -> Result<Option<Match>, Failure> {
        let mut st = State { text, bytes: self.bytes, groups: vec![None; self.groups], steps: 0, depth: 0, depth_limit, error: None };
        let last = if anchor == Anchor::Search { text.len() } else { from.min(text.len()) };
        for start in from..=last {
            for slot in st.groups.iter_mut() {
                *slot = None;
            }
            let mut end = None;
            let advance = must_advance && start == from;
            let found = seq(&self.nodes, start, &mut st, &mut |p, _| {
                if (advance && p == start) || (anchor == Anchor::Full && p != text.len()) {
                    return false;
                }
                end = Some(p);
                true
            });
            if let Some(err) = st.error.take() {
                return Err(err);
            }
            if found {
                let end = end.unwrap_or(start);
                return Ok(Some(Match { start, end, groups: st.groups.clone() }));
            }
        }
        Ok(None)
    }

    /// Python's `re.subn(pattern, template, text)` over units (`str` code points): the new
    /// text and the number of replacements. The template is checked first, as Python does.
    pub fn subn_units(&self, text: &[u32], tpl: &[u32]) -> Result<(Vec<u32>, usize), String> {
        parse_template(tpl, self.groups)?;
        let (mut out, mut count, mut last, mut pos, mut must_advance) = (Vec::new(), 0, 0, 0, false);
        while pos <= text.len() {
            let m = match self.search_from(text, pos, must_advance)? {
                Some(m) => m,
                None => break,
            };
            out.extend_from_slice(&text[last..m.start]);
            out.extend(self.expand_units(&m, text, tpl)?);
            count += 1;
            last = m.end;
            must_advance = m.end == m.start;
            pos = m.end;
        }
        out.extend_from_slice(&text[last..]);
        Ok((out, count))
    }

    /// Python's `match.expand(template)` for a `str` match of `text`.
    pub fn expand(&self, m: &Match, text: &str, template: &str) -> Result<String, String> {
        let units: Vec<u32> = text.chars().map(|c| c as u32).collect();
        let tpl: Vec<u32> = template.chars().map(|c| c as u32).collect();
        let out = self.expand_units(m, &units, &tpl)?;
        Ok(out.into_iter().filter_map(char::from_u32).collect())
    }

    /// Python's `match.expand(template)` for a bytes match of `data` (template bytes too).
    pub fn expand_bytes(&self, m: &Match, data: &[u8], template: &[u8]) -> Result<Vec<u8>, String> {
        let units: Vec<u32> = data.iter().map(|&b| b as u32).collect();
        let tpl: Vec<u32> = template.iter().map(|&b| b as u32).collect();
        let out = self.expand_units(m, &units, &tpl)?;
        Ok(out.into_iter().map(|u| u as u8).collect())
    }

    pub fn expand_units(&self, m: &Match, text: &[u32], tpl: &[u32]) -> Result<Vec<u32>, String> {
        let mut out = Vec::new();
        for piece in parse_template(tpl, self.groups)? {
            match piece {
                Piece::Literal(u) => out.push(u),
                Piece::Group(0) => out.extend_from_slice(&text[m.start..m.end]),
                Piece::Group(n) => {
                    if let Some((s, e)) = m.groups[n - 1] {
                        out.extend_from_slice(&text[s..e]);
                    }
                }
            }
        }
        Ok(out)
    }
}

// ------------------------------------------------------------------------------ tree parsing

fn parse_seq(tree: &Value, bytes: bool, groups: &mut usize) -> Result<Vec<Node>, String> {
    let list = tree.as_list().ok_or_else(|| format!("regex tree: expected a list, got {}", crate::json::to_string(tree)))?;
    list.iter().map(|node| parse_node(node, bytes, groups)).collect()
}

fn op_arg(node: &Value) -> Result<(&str, &Value), String> {
    let pair = node.as_list().filter(|p| p.len() == 2);
    match pair.and_then(|p| p[0].as_str().map(|op| (op, &p[1]))) {
        Some(found) => Ok(found),
        None => Err(format!("regex tree: bad node {}", crate::json::to_string(node))),
    }
}

fn codepoint(value: &Value, bytes: bool) -> Result<u32, String> {
    let limit = if bytes { 0xff } else { 0x10ffff };
    match value.as_i64() {
        Some(cp) if (0..=limit).contains(&cp) => Ok(cp as u32),
        _ => Err(format!("regex tree: bad code point {}", crate::json::to_string(value))),
    }
}

fn parse_node(node: &Value, bytes: bool, groups: &mut usize) -> Result<Node, String> {
    let (op, arg) = op_arg(node)?;
    Ok(match op {
        "LITERAL" => Node::Literal(codepoint(arg, bytes)?),
        "NOT_LITERAL" => Node::NotLiteral(codepoint(arg, bytes)?),
        "ANY" => Node::Any,
        "IN" => parse_in(arg, bytes)?,
        "CATEGORY" => Node::Category(category(arg)?),
        "AT" => Node::At(at_code(arg)?),
        "MAX_REPEAT" => parse_repeat(arg, Greed::Greedy, bytes, groups)?,
        "MIN_REPEAT" => parse_repeat(arg, Greed::Lazy, bytes, groups)?,
        "POSSESSIVE_REPEAT" => parse_repeat(arg, Greed::Possessive, bytes, groups)?,
        "SUBPATTERN" => {
            let parts = arg.as_list().filter(|p| p.len() == 2).ok_or("regex tree: bad SUBPATTERN")?;
            let group = match &parts[0] {
                Value::Null => None,
                Value::Int(n) if *n >= 1 => Some(*n as usize),
                _ => return Err("regex tree: bad group number".to_string()),
            };
            if let Some(n) = group {
                *groups = (*groups).max(n);
            }
            Node::Group(group, parse_seq(&parts[1], bytes, groups)?)
        }
        "ATOMIC_GROUP" => Node::Atomic(parse_seq(arg, bytes, groups)?),
        "BRANCH" => {
            let alts = arg.as_list().ok_or("regex tree: bad BRANCH")?;
            Node::Branch(alts.iter().map(|alt| parse_seq(alt, bytes, groups)).collect::<Result<_, _>>()?)
        }
        other => return Err(format!("regular expression construct {} is not supported by the native runner", other)),
    })
}

fn parse_repeat(arg: &Value, greed: Greed, bytes: bool, groups: &mut usize) -> Result<Node, String> {
    let parts = arg.as_list().filter(|p| p.len() == 3).ok_or("regex tree: bad repeat")?;
    let min = parts[0].as_i64().filter(|n| *n >= 0).ok_or("regex tree: bad repeat minimum")? as usize;
    let max = match parts[1].as_i64() {
        Some(-1) => None,
        Some(n) if n >= 0 => Some(n as usize),
        _ => return Err("regex tree: bad repeat maximum".to_string()),
    };
    Ok(Node::Repeat { min, max, greed, body: parse_seq(&parts[2], bytes, groups)? })
}

fn parse_in(arg: &Value, bytes: bool) -> Result<Node, String> {
    let list = arg.as_list().ok_or("regex tree: bad IN")?;
    let mut negate = false;
    let mut items = Vec::new();
    for item in list {
        let (op, value) = op_arg(item)?;
        match op {
            "NEGATE" => negate = true,
            "LITERAL" => items.push(Item::Literal(codepoint(value, bytes)?)),
            "RANGE" => {
                let pair = value.as_list().filter(|p| p.len() == 2).ok_or("regex tree: bad RANGE")?;
                items.push(Item::Range(codepoint(&pair[0], bytes)?, codepoint(&pair[1], bytes)?));
            }
            "CATEGORY" => items.push(Item::Category(category(value)?)),
            other => return Err(format!("regular expression set item {} is not supported by the native runner", other)),
        }
    }
    Ok(Node::In { negate, items })
}

fn category(arg: &Value) -> Result<Category, String> {
    Ok(match arg.as_str().unwrap_or("") {
        "CATEGORY_DIGIT" => Category::Digit,
        "CATEGORY_NOT_DIGIT" => Category::NotDigit,
        "CATEGORY_SPACE" => Category::Space,
        "CATEGORY_NOT_SPACE" => Category::NotSpace,
        "CATEGORY_WORD" => Category::Word,
        "CATEGORY_NOT_WORD" => Category::NotWord,
        _ => return Err(format!("regular expression category {} is not supported by the native runner", crate::json::to_string(arg))),
    })
}

fn at_code(arg: &Value) -> Result<At, String> {
    Ok(match arg.as_str().unwrap_or("") {
        "AT_BEGINNING" => At::Beginning,
        "AT_END" => At::End,
        "AT_BEGINNING_LINE" => At::BeginningLine,
        "AT_END_LINE" => At::EndLine,
        "AT_BEGINNING_STRING" => At::BeginningString,
        "AT_END_STRING" => At::EndString,
        "AT_BOUNDARY" => At::Boundary,
        "AT_NON_BOUNDARY" => At::NonBoundary,
        _ => return Err(format!("regular expression anchor {} is not supported by the native runner", crate::json::to_string(arg))),
    })
}

// ---------------------------------------------------------------------------- character tests

/// Start and end (inclusive) of the Unicode `Nd` (decimal digit) ranges, Python's `\d` for str.
const DECIMAL_RANGES: &[(u32, u32)] = &[
    (0x30, 0x39),
    (0x660, 0x669),
    (0x6f0, 0x6f9),
    (0x7c0, 0x7c9),
    (0x966, 0x96f),
    (0x9e6, 0x9ef),
    (0xa66, 0xa6f),
    (0xae6, 0xaef),
    (0xb66, 0xb6f),
    (0xbe6, 0xbef),
    (0xc66, 0xc6f),
    (0xce6, 0xcef),
    (0xd66, 0xd6f),
    (0xde6, 0xdef),
    (0xe50, 0xe59),
    (0xed0, 0xed9),
    (0xf20, 0xf29),
    (0x1040, 0x1049),
    (0x1090, 0x1099),
    (0x17e0, 0x17e9),
    (0x1810, 0x1819),
    (0x1946, 0x194f),
    (0x19d0, 0x19d9),
    (0x1a80, 0x1a89),
    (0x1a90, 0x1a99),
    (0x1b50, 0x1b59),
    (0x1bb0, 0x1bb9),
    (0x1c40, 0x1c49),
    (0x1c50, 0x1c59),
    (0xa620, 0xa629),
    (0xa8d0, 0xa8d9),
    (0xa900, 0xa909),
    (0xa9d0, 0xa9d9),
    (0xa9f0, 0xa9f9),
    (0xaa50, 0xaa59),
    (0xabf0, 0xabf9),
    (0xff10, 0xff19),
    (0x104a0, 0x104a9),
    (0x10d30, 0x10d39),
    (0x11066, 0x1106f),
    (0x110f0, 0x110f9),
    (0x11136, 0x1113f),
    (0x111d0, 0x111d9),
    (0x112f0, 0x112f9),
    (0x11450, 0x11459),
    (0x114d0, 0x114d9),
    (0x11650, 0x11659),
    (0x116c0, 0x116c9),
    (0x11730, 0x11739),
    (0x118e0, 0x118e9),
    (0x11950, 0x11959),
    (0x11c50, 0x11c59),
    (0x11d50, 0x11d59),
    (0x11da0, 0x11da9),
    (0x16a60, 0x16a69),
    (0x16ac0, 0x16ac9),
    (0x16b50, 0x16b59),
    (0x1d7ce, 0x1d7ff),
    (0x1e140, 0x1e149),
    (0x1e2f0, 0x1e2f9),
    (0x1e950, 0x1e959),
    (0x1fbf0, 0x1fbf9),
];

fn is_digit(u: u32, bytes: bool) -> bool {
    if u < 128 || bytes {
        return (0x30..=0x39).contains(&u);
    }
    DECIMAL_RANGES.binary_search_by(|&(lo, hi)| {
        if hi < u {
            std::cmp::Ordering::Less
        } else if lo > u {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    }).is_ok()
}

fn is_space(u: u32, bytes: bool) -> bool {
    if u < 128 || bytes {
        return matches!(u, 0x09..=0x0d | 0x20) || (!bytes && (0x1c..=0x1f).contains(&u));
    }
    char::from_u32(u).map_or(false, char::is_whitespace)
}

fn is_word(u: u32, bytes: bool) -> bool {
    if u < 128 || bytes {
        return u == 0x5f || (u < 128 && (u as u8).is_ascii_alphanumeric());
    }
    char::from_u32(u).map_or(false, char::is_alphanumeric)
}

fn in_category(cat: Category, u: u32, bytes: bool) -> bool {
    match cat {
        Category::Digit => is_digit(u, bytes),
        Category::NotDigit => !is_digit(u, bytes),
        Category::Space => is_space(u, bytes),
        Category::NotSpace => !is_space(u, bytes),
        Category::Word => is_word(u, bytes),
        Category::NotWord => !is_word(u, bytes),
    }
}

/// Whether a single-unit node matches `u`; None for nodes that are not single-unit.
fn single(node: &Node, u: u32, bytes: bool) -> Option<bool> {
    Some(match node {
        Node::Literal(c) => u == *c,
        Node::NotLiteral(c) => u != *c,
        Node::Any => u != 0x0a,
        Node::Category(cat) => in_category(*cat, u, bytes),
        Node::In { negate, items } => {
            let hit = items.iter().any(|item| match item {
                Item::Literal(c) => u == *c,
                Item::Range(lo, hi) => *lo <= u && u <= *hi,
                Item::Category(cat) => in_category(*cat, u, bytes),
            });
            hit != *negate
        }
        _ => return None,
    })
}

// ----------------------------------------------------------------------------------- matching

/// Why a search gave up.
#[derive(Debug)]
enum Failure {
    Budget,
    TooDeep,
}

impl Failure {
    fn message(self) -> String {
        match self {
            Failure::Budget => "the regular expression needs too much backtracking for the native runner's matcher (catastrophic backtracking?)".to_string(),
            Failure::TooDeep => "the regular expression nests too deeply on this text for the native runner's matcher".to_string(),
        }
    }
}

struct State<'t> {
    text: &'t [u32],
    bytes: bool,
    groups: Vec<Option<(usize, usize)>>,
    steps: u64,
    depth: u32,
    depth_limit: u32,
    error: Option<Failure>,
}

impl<'t> State<'t> {
    /// Count a step; false (with `error` set) once the budget or the depth limit is spent.
    fn step(&mut self) -> bool {
        if self.error.is_some() {
            return false;
        }
        self.steps += 1;
        if self.steps > STEP_BUDGET {
            self.error = Some(Failure::Budget);
        } else if self.depth > self.depth_limit {
            self.error = Some(Failure::TooDeep);
        }
        self.error.is_none()
    }

    fn at(&self, code: At, pos: usize) -> bool {
        let text = self.text;
        let word = |i: usize| is_word(text[i], self.bytes);
        match code {
            At::Beginning | At::BeginningString => pos == 0,
            At::End => pos == text.len() || (pos + 1 == text.len() && text[pos] == 0x0a),
            At::EndString => pos == text.len(),
            At::BeginningLine => pos == 0 || text[pos - 1] == 0x0a,
            At::EndLine => pos == text.len() || text[pos] == 0x0a,
            At::Boundary | At::NonBoundary => {
                if text.is_empty() {
                    return false;
                }
                let before = pos > 0 && word(pos - 1);
                let after = pos < text.len() && word(pos);
                (before != after) == (code == At::Boundary)
            }
        }
    }
}

type Cont<'k, 't> = dyn FnMut(usize, &mut State<'t>) -> bool + 'k;

/// Match `nodes` at `pos`, then the continuation `k` at the end position.
fn seq<'t>(nodes: &[Node], pos: usize, st: &mut State<'t>, k: &mut Cont<'_, 't>) -> bool {
    match nodes.split_first() {
        None => k(pos, st),
        Some((first, rest)) => {
            if rest.is_empty() {
                node(first, pos, st, k)
            } else {
                node(first, pos, st, &mut |p, st: &mut State<'t>| seq(rest, p, st, k))
            }
        }
    }
}

fn node<'t>(n: &Node, pos: usize, st: &mut State<'t>, k: &mut Cont<'_, 't>) -> bool {
    if !st.step() {
        return false;
    }
    if let Some(hit) = st.text.get(pos).and_then(|&u| single(n, u, st.bytes)) {
        return hit && k(pos + 1, st);
    }
    match n {
        Node::At(code) => st.at(*code, pos) && k(pos, st),
        Node::Group(None, body) => seq(body, pos, st, k),
        Node::Group(Some(g), body) => {
            let g = *g - 1;
            seq(body, pos, st, &mut |p, st: &mut State<'t>| {
                let saved = st.groups[g];
                st.groups[g] = Some((pos, p));
                if k(p, st) {
                    return true;
                }
                st.groups[g] = saved;
                false
            })
        }
        Node::Branch(alts) => alts.iter().any(|alt| seq(alt, pos, st, k)),
        Node::Atomic(body) => atomic(body, pos, st, k),
        Node::Repeat { min, max, greed: Greed::Possessive, body } => {
            let greedy = [Node::Repeat { min: *min, max: *max, greed: Greed::Greedy, body: body.clone() }];
            atomic(&greedy, pos, st, k)
        }
        Node::Repeat { min, max, greed, body } => {
            let lazy = *greed == Greed::Lazy;
            match body.as_slice() {
                [one] if single(one, 0, st.bytes).is_some() => repeat_single(one, *min, *max, lazy, pos, st, k),
                _ => repeat(body, *min, *max, lazy, 0, pos, st, k),
            }
        }
        // single-unit nodes at the end of the text
        _ => false,
    }
}

/// Match `body` once (first way only), keep its groups, then `k`; undo the groups if `k` fails.
fn atomic<'t>(body: &[Node], pos: usize, st: &mut State<'t>, k: &mut Cont<'_, 't>) -> bool {
    let saved = st.groups.clone();
    let mut end = None;
    if !seq(body, pos, st, &mut |p, _| {
        end = Some(p);
        true
    }) {
        return false;
    }
    if k(end.unwrap_or(pos), st) {
        return true;
    }
    st.groups = saved;
    false
}

/// A repeat of a single-unit node: count the run once, then try the lengths in order.
fn repeat_single<'t>(one: &Node, min: usize, max: Option<usize>, lazy: bool, pos: usize, st: &mut State<'t>, k: &mut Cont<'_, 't>) -> bool {
    let limit = max.unwrap_or(usize::MAX);
    let mut run = 0;
    while run < limit && pos + run < st.text.len() && single(one, st.text[pos + run], st.bytes) == Some(true) {
        run += 1;
    }
    if run < min {
        return false;
    }
    let mut lengths: Box<dyn Iterator<Item = usize>> = if lazy { Box::new(min..=run) } else { Box::new((min..=run).rev()) };
    lengths.any(|n| st.step() && k(pos + n, st))
}

/// A repeat of a complex body, `count` iterations done; past the minimum, an iteration that
/// matched nothing ends the repeat (as sre's MAX_UNTIL/MIN_UNTIL do), keeping its groups.
// clippy sees `a || b` and `b || a` as the same block; for greedy vs lazy the order is the point
#[allow(clippy::too_many_arguments, clippy::if_same_then_else)]
fn repeat<'t>(body: &[Node], min: usize, max: Option<usize>, lazy: bool, count: usize, pos: usize, st: &mut State<'t>, k: &mut Cont<'_, 't>) -> bool {
    if !st.step() {
        return false;
    }
    st.depth += 1;
    let more = max.map_or(true, |m| count < m);
    let found = if count < min {
        seq(body, pos, st, &mut |p, st: &mut State<'t>| repeat(body, min, max, lazy, count + 1, p, st, k))
    } else {
        let again = |st: &mut State<'t>, k: &mut Cont<'_, 't>| {
            more && seq(body, pos, st, &mut |p, st: &mut State<'t>| if p == pos { k(p, st) } else { repeat(body, min, max, lazy, count + 1, p, st, k) })
        };
        if lazy {
            k(pos, st) || again(st, k)
        } else {
            again(st, k) || k(pos, st)
        }
    };
    st.depth -= 1;
    found
}

// ----------------------------------------------------------------------------------- expand

enum Piece {
    Literal(u32),
    Group(usize),
}

const ESCAPES: &[(u32, u32)] = &[
    ('a' as u32, 7),
    ('b' as u32, 8),
    ('f' as u32, 12),
    ('n' as u32, 10),
    ('r' as u32, 13),
    ('t' as u32, 9),
    ('v' as u32, 11),
    ('\\' as u32, '\\' as u32),
];

fn is_octal(u: Option<&u32>) -> bool {
    matches!(u, Some(&c) if (0x30..=0x37).contains(&c))
}

fn is_decimal(u: Option<&u32>) -> bool {
    matches!(u, Some(&c) if (0x30..=0x39).contains(&c))
}

fn template_error(msg: String, pos: usize) -> String {
    format!("error: {} at position {}", msg, pos)
}

/// Python's `sre_parse.parse_template`: `\1`…`\99`, `\g<n>`, octal and letter escapes.
fn parse_template(tpl: &[u32], groups: usize) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    let group = |index: usize, pos: usize| {
        if index > groups {
            Err(template_error(format!("invalid group reference {}", index), pos))
        } else {
            Ok(Piece::Group(index))
        }
    };
    while i < tpl.len() {
        if tpl[i] != '\\' as u32 {
            out.push(Piece::Literal(tpl[i]));
            i += 1;
            continue;
        }
        let c = match tpl.get(i + 1) {
            Some(&c) => c,
            None => return Err(template_error("bad escape (end of pattern)".to_string(), i)),
        };
        i += 2;
        if c == 'g' as u32 {
            if tpl.get(i) != Some(&('<' as u32)) {
                return Err(template_error("missing <".to_string(), i));
            }
            let close = tpl[i + 1..].iter().position(|&u| u == '>' as u32);
            let name: String = tpl[i + 1..i + 1 + close.unwrap_or(tpl.len() - i - 1)].iter().filter_map(|&u| char::from_u32(u)).collect();
            let close = match close {
                Some(n) => n,
                None => return Err(template_error("missing >, unterminated name".to_string(), i + 1)),
            };
            i += close + 2;
            let digits = !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit());
            if !digits {
                return Err(format!("backreference \\g<{}>: named groups (and anything but group numbers) are not supported by the native runner", name));
            }
            let index: usize = name.parse().map_err(|_| template_error(format!("invalid group reference {}", name), i - name.len() - 1))?;
            out.push(group(index, i - name.len() - 1)?);
        } else if c == '0' as u32 {
            let mut value = 0;
            let mut n = 0;
            while n < 2 && is_octal(tpl.get(i)) {
                value = value * 8 + (tpl[i] - 0x30);
                i += 1;
                n += 1;
            }
            out.push(Piece::Literal(value & 0xff));
        } else if is_decimal(Some(&c)) {
            let start = i - 2;
            let mut digits = vec![c - 0x30];
            if is_decimal(tpl.get(i)) {
                digits.push(tpl[i] - 0x30);
                i += 1;
                if c <= 0x37 && digits[1] <= 7 && is_octal(tpl.get(i)) {
                    let value = digits[0] * 64 + digits[1] * 8 + (tpl[i] - 0x30);
                    i += 1;
                    if value > 0o377 {
                        let text: String = tpl[start..i].iter().filter_map(|&u| char::from_u32(u)).collect();
                        return Err(template_error(format!("octal escape value {} outside of range 0-0o377", text), start));
                    }
                    out.push(Piece::Literal(value));
                    continue;
                }
            }
            let index = digits.iter().fold(0, |acc, d| acc * 10 + *d as usize);
            out.push(group(index, start + 1)?);
        } else if let Some(&(_, value)) = ESCAPES.iter().find(|(e, _)| *e == c) {
            out.push(Piece::Literal(value));
        } else if c < 128 && (c as u8).is_ascii_alphabetic() {
            return Err(template_error(format!("bad escape \\{}", char::from_u32(c).unwrap_or('?')), i - 2));
        } else {
            out.push(Piece::Literal('\\' as u32));
            out.push(Piece::Literal(c));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Value {
        crate::json::parse(text).unwrap()
    }

    fn units(text: &str) -> Vec<u32> {
        text.chars().map(|c| c as u32).collect()
    }

    #[test]
    fn subn_replaces_empty_matches_as_python() {
        // re.subn('x*', '-', 'abxd') == ('-a-b--d-', 5)
        let re = Regex::from_tree(&tree(r#"[["MAX_REPEAT", [0, -1, [["LITERAL", 120]]]]]"#)).unwrap();
        let (out, n) = re.subn_units(&units("abxd"), &units("-")).unwrap();
        assert_eq!((out.into_iter().filter_map(char::from_u32).collect::<String>(), n), ("-a-b--d-".to_string(), 5));
        // re.subn('(?m)^(\\w)', '<\\1>', 'ab\ncd') == ('<a>b\n<c>d', 2)
        let re = Regex::from_tree(&tree(r#"[["AT", "AT_BEGINNING_LINE"], ["SUBPATTERN", [1, [["IN", [["CATEGORY", "CATEGORY_WORD"]]]]]]]"#)).unwrap();
        let (out, n) = re.subn_units(&units("ab\ncd"), &units("<\\1>")).unwrap();
        assert_eq!((out.into_iter().filter_map(char::from_u32).collect::<String>(), n), ("<a>b\n<c>d".to_string(), 2));
        assert!(re.subn_units(&units("ab"), &units("\\2")).unwrap_err().contains("invalid group reference 2"));
    }

    #[test]
    fn search_match_and_fullmatch() {
        let re = Regex::from_tree(&tree(r#"[["LITERAL", 98], ["AT", "AT_END_LINE"]]"#)).unwrap(); // (?m)b$
        assert_eq!(re.is_match("ab\nc", "search"), Ok(true));
        assert_eq!(re.is_match("ab\nc", "match"), Ok(false));
        assert_eq!(re.is_match("b", "fullmatch"), Ok(true));
        assert_eq!(re.is_match("b\n", "fullmatch"), Ok(false));
    }

    #[test]
    fn literal_search_finds_leftmost() {
        let re = Regex::from_tree(&tree(r#"[["LITERAL", 98]]"#)).unwrap();
        let m = re.search("abcb").unwrap().unwrap();
        assert_eq!((m.start, m.end), (1, 2));
    }

    #[test]
    fn unsupported_construct_is_refused() {
        let err = Regex::from_tree(&tree(r#"[["GROUPREF", 1]]"#)).unwrap_err();
        assert!(err.contains("GROUPREF"), "{}", err);
    }

    #[test]
    fn bytes_tree_refuses_code_points_above_255() {
        assert!(Regex::from_bytes_tree(&tree(r#"[["LITERAL", 300]]"#)).is_err());
    }

    #[test]
    fn catastrophic_backtracking_hits_the_budget() {
        // (a+)+b on "aaaa…c"
        let t = tree(r#"[["MAX_REPEAT", [1, -1, [["SUBPATTERN", [1, [["MAX_REPEAT", [1, -1, [["LITERAL", 97]]]]]]]]]], ["LITERAL", 98]]"#);
        let re = Regex::from_tree(&t).unwrap();
        let text = format!("{}c", "a".repeat(40));
        assert!(re.search(&text).unwrap_err().contains("backtracking"));
    }

    #[test]
    fn long_repeats_of_groups_stay_within_the_depth_limit() {
        // (?:ab)*c on a long line: deep recursion moves to a big stack; beyond it, a clear error
        let t = tree(r#"[["MAX_REPEAT", [0, -1, [["LITERAL", 97], ["LITERAL", 98]]]], ["LITERAL", 99]]"#);
        let re = Regex::from_tree(&t).unwrap();
        assert_eq!(re.search(&format!("{}c", "ab".repeat(5000))).unwrap().map(|m| m.end), Some(10001));
        assert!(re.search(&format!("{}c", "ab".repeat(150_000))).is_err());
    }

    #[test]
    fn expand_refuses_named_groups() {
        let re = Regex::from_tree(&tree(r#"[["SUBPATTERN", [1, [["LITERAL", 97]]]]]"#)).unwrap();
        let m = re.search("a").unwrap().unwrap();
        assert!(re.expand(&m, "a", r"\g<name>").unwrap_err().contains("named groups"));
        assert_eq!(re.expand(&m, "a", r"<\1\g<1>\n>").unwrap(), "<aa\n>");
    }

    /// Cases generated with Python's `re` (`CASES`, written by a generator script that runs Python 3.11's `re` and `re._parser`): pattern tree, mode, text and
    /// the expected search result or error.
    #[test]
    fn matches_python_re() {
        let cases = crate::json::parse(CASES).unwrap();
        let mut failures = Vec::new();
        for case in cases.as_list().unwrap() {
            let pattern = case.get("pattern").and_then(Value::as_str).unwrap();
            let bytes = case.get("bytes").and_then(Value::as_bool).unwrap();
            let t = case.get("tree").unwrap();
            let re = if bytes { Regex::from_bytes_tree(t) } else { Regex::from_tree(t) }.unwrap();
            let text = case.get("text").and_then(Value::as_str).unwrap();
            let got = if bytes {
                let data: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
                re.search_bytes(&data)
            } else {
                re.search(text)
            }
            .unwrap();
            let got_value = match &got {
                None => Value::Null,
                Some(m) => {
                    let mut spans = vec![Value::List(vec![Value::Int(m.start as i64), Value::Int(m.end as i64)])];
                    for g in &m.groups {
                        spans.push(match g {
                            None => Value::Null,
                            Some((s, e)) => Value::List(vec![Value::Int(*s as i64), Value::Int(*e as i64)]),
                        });
                    }
                    Value::List(spans)
                }
            };
            if &got_value != case.get("spans").unwrap() {
                failures.push(format!("{:?} on {:?}: got {} want {}", pattern, text, crate::json::to_string(&got_value), crate::json::to_string(case.get("spans").unwrap())));
                continue;
            }
            if let (Some(m), Some(tpl), Some(want)) = (&got, case.get("template").and_then(Value::as_str), case.get("expanded")) {
                let expanded = if bytes {
                    let data: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
                    let t: Vec<u8> = tpl.chars().map(|c| c as u32 as u8).collect();
                    re.expand_bytes(m, &data, &t).map(|v| v.into_iter().map(|b| b as char).collect::<String>())
                } else {
                    re.expand(m, text, tpl)
                };
                let expanded = match expanded {
                    Ok(s) => Value::Str(s),
                    Err(e) => Value::Str(format!("ERROR {}", e)),
                };
                if &expanded != want {
                    failures.push(format!("expand {:?} with {:?}: got {} want {}", pattern, tpl, crate::json::to_string(&expanded), crate::json::to_string(want)));
                }
            }
        }
        assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    }

    const CASES: &str = r##"[{"pattern": "^PermitRootLogin", "bytes": false, "tree": [["AT", "AT_BEGINNING"], ["LITERAL", 80], ["LITERAL", 101], ["LITERAL", 114], ["LITERAL", 109], ["LITERAL", 105], ["LITERAL", 116], ["LITERAL", 82], ["LITERAL", 111], ["LITERAL", 111], ["LITERAL", 116], ["LITERAL", 76], ["LITERAL", 111], ["LITERAL", 103], ["LITERAL", 105], ["LITERAL", 110]], "text": "PermitRootLogin yes\n", "spans": [[0, 15]]}, {"pattern": "^PermitRootLogin", "bytes": false, "tree": [["AT", "AT_BEGINNING"], ["LITERAL", 80], ["LITERAL", 101], ["LITERAL", 114], ["LITERAL", 109], ["LITERAL", 105], ["LITERAL", 116], ["LITERAL", 82], ["LITERAL", 111], ["LITERAL", 111], ["LITERAL", 116], ["LITERAL", 76], ["LITERAL", 111], ["LITERAL", 103], ["LITERAL", 105], ["LITERAL", 110]], "text": "# PermitRootLogin", "spans": null}, {"pattern": "^PermitRootLogin", "bytes": false, "tree": [["AT", "AT_BEGINNING"], ["LITERAL", 80], ["LITERAL", 101], ["LITERAL", 114], ["LITERAL", 109], ["LITERAL", 105], ["LITERAL", 116], ["LITERAL", 82], ["LITERAL", 111], ["LITERAL", 111], ["LITERAL", 116], ["LITERAL", 76], ["LITERAL", 111], ["LITERAL", 103], ["LITERAL", 105], ["LITERAL", 110]], "text": "", "spans": null}, {"pattern": "^PermitRootLogin", "bytes": true, "tree": [["AT", "AT_BEGINNING"], ["LITERAL", 80], ["LITERAL", 101], ["LITERAL", 114], ["LITERAL", 109], ["LITERAL", 105], ["LITERAL", 116], ["LITERAL", 82], ["LITERAL", 111], ["LITERAL", 111], ["LITERAL", 116], ["LITERAL", 76], ["LITERAL", 111], ["LITERAL", 103], ["LITERAL", 105], ["LITERAL", 110]], "text": "PermitRootLogin yes\n", "spans": [[0, 15]]}, {"pattern": "^PermitRootLogin", "bytes": true, "tree": [["AT", "AT_BEGINNING"], ["LITERAL", 80], ["LITERAL", 101], ["LITERAL", 114], ["LITERAL", 109], ["LITERAL", 105], ["LITERAL", 116], ["LITERAL", 82], ["LITERAL", 111], ["LITERAL", 111], ["LITERAL", 116], ["LITERAL", 76], ["LITERAL", 111], ["LITERAL", 103], ["LITERAL", 105], ["LITERAL", 110]], "text": "# PermitRootLogin", "spans": null}, {"pattern": "^PermitRootLogin", "bytes": true, "tree": [["AT", "AT_BEGINNING"], ["LITERAL", 80], ["LITERAL", 101], ["LITERAL", 114], ["LITERAL", 109], ["LITERAL", 105], ["LITERAL", 116], ["LITERAL", 82], ["LITERAL", 111], ["LITERAL", 111], ["LITERAL", 116], ["LITERAL", 76], ["LITERAL", 111], ["LITERAL", 103], ["LITERAL", 105], ["LITERAL", 110]], "text": "", "spans": null}, {"pattern": "^Port (\\d+)", "bytes": false, "tree": [["AT", "AT_BEGINNING"], ["LITERAL", 80], ["LITERAL", 111], ["LITERAL", 114], ["LITERAL", 116], ["LITERAL", 32], ["SUBPATTERN", [1, [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_DIGIT"]]]]]]]]]], "text": "Port 22\n", "spans": [[0, 7], [5, 7]], "template": "Port \\g<1>0", "expanded": "Port 220"}, {"pattern": "^Port (\\d+)", "bytes": false, "tree": [["AT", "AT_BEGINNING"], ["LITERAL", 80], ["LITERAL", 111], ["LITERAL", 114], ["LITERAL", 116], ["LITERAL", 32], ["SUBPATTERN", [1, [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_DIGIT"]]]]]]]]]], "text": "Port x", "spans": null}, {"pattern": "^Port (\\d+)", "bytes": true, "tree": [["AT", "AT_BEGINNING"], ["LITERAL", 80], ["LITERAL", 111], ["LITERAL", 114], ["LITERAL", 116], ["LITERAL", 32], ["SUBPATTERN", [1, [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_DIGIT"]]]]]]]]]], "text": "Port 22\n", "spans": [[0, 7], [5, 7]], "template": "Port \\g<1>0", "expanded": "Port 220"}, {"pattern": "^Port (\\d+)", "bytes": true, "tree": [["AT", "AT_BEGINNING"], ["LITERAL", 80], ["LITERAL", 111], ["LITERAL", 114], ["LITERAL", 116], ["LITERAL", 32], ["SUBPATTERN", [1, [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_DIGIT"]]]]]]]]]], "text": "Port x", "spans": null}, {"pattern": "yes$", "bytes": false, "tree": [["LITERAL", 121], ["LITERAL", 101], ["LITERAL", 115], ["AT", "AT_END"]], "text": "UsePAM yes\n", "spans": [[7, 10]]}, {"pattern": "yes$", "bytes": false, "tree": [["LITERAL", 121], ["LITERAL", 101], ["LITERAL", 115], ["AT", "AT_END"]], "text": "yes\n\n", "spans": null}, {"pattern": "yes$", "bytes": false, "tree": [["LITERAL", 121], ["LITERAL", 101], ["LITERAL", 115], ["AT", "AT_END"]], "text": "yes", "spans": [[0, 3]]}, {"pattern": "yes$", "bytes": false, "tree": [["LITERAL", 121], ["LITERAL", 101], ["LITERAL", 115], ["AT", "AT_END"]], "text": "yesno", "spans": null}, {"pattern": "yes$", "bytes": true, "tree": [["LITERAL", 121], ["LITERAL", 101], ["LITERAL", 115], ["AT", "AT_END"]], "text": "UsePAM yes\n", "spans": [[7, 10]]}, {"pattern": "yes$", "bytes": true, "tree": [["LITERAL", 121], ["LITERAL", 101], ["LITERAL", 115], ["AT", "AT_END"]], "text": "yes\n\n", "spans": null}, {"pattern": "yes$", "bytes": true, "tree": [["LITERAL", 121], ["LITERAL", 101], ["LITERAL", 115], ["AT", "AT_END"]], "text": "yes", "spans": [[0, 3]]}, {"pattern": "yes$", "bytes": true, "tree": [["LITERAL", 121], ["LITERAL", 101], ["LITERAL", 115], ["AT", "AT_END"]], "text": "yesno", "spans": null}, {"pattern": "a.c", "bytes": false, "tree": [["LITERAL", 97], ["ANY", null], ["LITERAL", 99]], "text": "abc", "spans": [[0, 3]]}, {"pattern": "a.c", "bytes": false, "tree": [["LITERAL", 97], ["ANY", null], ["LITERAL", 99]], "text": "a\nc", "spans": null}, {"pattern": "a.c", "bytes": false, "tree": [["LITERAL", 97], ["ANY", null], ["LITERAL", 99]], "text": "xxaxc", "spans": [[2, 5]]}, {"pattern": "a.c", "bytes": true, "tree": [["LITERAL", 97], ["ANY", null], ["LITERAL", 99]], "text": "abc", "spans": [[0, 3]]}, {"pattern": "a.c", "bytes": true, "tree": [["LITERAL", 97], ["ANY", null], ["LITERAL", 99]], "text": "a\nc", "spans": null}, {"pattern": "a.c", "bytes": true, "tree": [["LITERAL", 97], ["ANY", null], ["LITERAL", 99]], "text": "xxaxc", "spans": [[2, 5]]}, {"pattern": "(a|ab)(c|bcd)(d*)", "bytes": false, "tree": [["SUBPATTERN", [1, [["LITERAL", 97], ["BRANCH", [[], [["LITERAL", 98]]]]]]], ["SUBPATTERN", [2, [["BRANCH", [[["LITERAL", 99]], [["LITERAL", 98], ["LITERAL", 99], ["LITERAL", 100]]]]]]], ["SUBPATTERN", [3, [["MAX_REPEAT", [0, -1, [["LITERAL", 100]]]]]]]], "text": "abcd", "spans": [[0, 4], [0, 1], [1, 4], [4, 4]], "template": "[\\1|\\2|\\3]", "expanded": "[a|bcd|]"}, {"pattern": "(a|ab)(c|bcd)(d*)", "bytes": true, "tree": [["SUBPATTERN", [1, [["LITERAL", 97], ["BRANCH", [[], [["LITERAL", 98]]]]]]], ["SUBPATTERN", [2, [["BRANCH", [[["LITERAL", 99]], [["LITERAL", 98], ["LITERAL", 99], ["LITERAL", 100]]]]]]], ["SUBPATTERN", [3, [["MAX_REPEAT", [0, -1, [["LITERAL", 100]]]]]]]], "text": "abcd", "spans": [[0, 4], [0, 1], [1, 4], [4, 4]], "template": "[\\1|\\2|\\3]", "expanded": "[a|bcd|]"}, {"pattern": "a*?b", "bytes": false, "tree": [["MIN_REPEAT", [0, -1, [["LITERAL", 97]]]], ["LITERAL", 98]], "text": "aaab", "spans": [[0, 4]]}, {"pattern": "a*?b", "bytes": true, "tree": [["MIN_REPEAT", [0, -1, [["LITERAL", 97]]]], ["LITERAL", 98]], "text": "aaab", "spans": [[0, 4]]}, {"pattern": "(a+?)(a*)", "bytes": false, "tree": [["SUBPATTERN", [1, [["MIN_REPEAT", [1, -1, [["LITERAL", 97]]]]]]], ["SUBPATTERN", [2, [["MAX_REPEAT", [0, -1, [["LITERAL", 97]]]]]]]], "text": "aaaa", "spans": [[0, 4], [0, 1], [1, 4]], "template": "\\2-\\1", "expanded": "aaa-a"}, {"pattern": "(a+?)(a*)", "bytes": true, "tree": [["SUBPATTERN", [1, [["MIN_REPEAT", [1, -1, [["LITERAL", 97]]]]]]], ["SUBPATTERN", [2, [["MAX_REPEAT", [0, -1, [["LITERAL", 97]]]]]]]], "text": "aaaa", "spans": [[0, 4], [0, 1], [1, 4]], "template": "\\2-\\1", "expanded": "aaa-a"}, {"pattern": "x{2,3}", "bytes": false, "tree": [["MAX_REPEAT", [2, 3, [["LITERAL", 120]]]]], "text": "xxxxx", "spans": [[0, 3]]}, {"pattern": "x{2,3}", "bytes": false, "tree": [["MAX_REPEAT", [2, 3, [["LITERAL", 120]]]]], "text": "x", "spans": null}, {"pattern": "x{2,3}", "bytes": true, "tree": [["MAX_REPEAT", [2, 3, [["LITERAL", 120]]]]], "text": "xxxxx", "spans": [[0, 3]]}, {"pattern": "x{2,3}", "bytes": true, "tree": [["MAX_REPEAT", [2, 3, [["LITERAL", 120]]]]], "text": "x", "spans": null}, {"pattern": "x{2,3}?", "bytes": false, "tree": [["MIN_REPEAT", [2, 3, [["LITERAL", 120]]]]], "text": "xxxxx", "spans": [[0, 2]]}, {"pattern": "x{2,3}?", "bytes": true, "tree": [["MIN_REPEAT", [2, 3, [["LITERAL", 120]]]]], "text": "xxxxx", "spans": [[0, 2]]}, {"pattern": "[^a-c\\d]+", "bytes": false, "tree": [["MAX_REPEAT", [1, -1, [["IN", [["NEGATE", null], ["RANGE", [97, 99]], ["CATEGORY", "CATEGORY_DIGIT"]]]]]]], "text": "abc12xyz3", "spans": [[5, 8]]}, {"pattern": "[^a-c\\d]+", "bytes": true, "tree": [["MAX_REPEAT", [1, -1, [["IN", [["NEGATE", null], ["RANGE", [97, 99]], ["CATEGORY", "CATEGORY_DIGIT"]]]]]]], "text": "abc12xyz3", "spans": [[5, 8]]}, {"pattern": "[\\w.-]+@[\\w.-]+", "bytes": false, "tree": [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_WORD"], ["LITERAL", 46], ["LITERAL", 45]]]]]], ["LITERAL", 64], ["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_WORD"], ["LITERAL", 46], ["LITERAL", 45]]]]]]], "text": "mail: john.doe@example.com!", "spans": [[6, 26]]}, {"pattern": "[\\w.-]+@[\\w.-]+", "bytes": true, "tree": [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_WORD"], ["LITERAL", 46], ["LITERAL", 45]]]]]], ["LITERAL", 64], ["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_WORD"], ["LITERAL", 46], ["LITERAL", 45]]]]]]], "text": "mail: john.doe@example.com!", "spans": [[6, 26]]}, {"pattern": "\\bfoo\\b", "bytes": false, "tree": [["AT", "AT_BOUNDARY"], ["LITERAL", 102], ["LITERAL", 111], ["LITERAL", 111], ["AT", "AT_BOUNDARY"]], "text": "a foo b", "spans": [[2, 5]]}, {"pattern": "\\bfoo\\b", "bytes": false, "tree": [["AT", "AT_BOUNDARY"], ["LITERAL", 102], ["LITERAL", 111], ["LITERAL", 111], ["AT", "AT_BOUNDARY"]], "text": "foobar", "spans": null}, {"pattern": "\\bfoo\\b", "bytes": false, "tree": [["AT", "AT_BOUNDARY"], ["LITERAL", 102], ["LITERAL", 111], ["LITERAL", 111], ["AT", "AT_BOUNDARY"]], "text": "foo", "spans": [[0, 3]]}, {"pattern": "\\bfoo\\b", "bytes": true, "tree": [["AT", "AT_BOUNDARY"], ["LITERAL", 102], ["LITERAL", 111], ["LITERAL", 111], ["AT", "AT_BOUNDARY"]], "text": "a foo b", "spans": [[2, 5]]}, {"pattern": "\\bfoo\\b", "bytes": true, "tree": [["AT", "AT_BOUNDARY"], ["LITERAL", 102], ["LITERAL", 111], ["LITERAL", 111], ["AT", "AT_BOUNDARY"]], "text": "foobar", "spans": null}, {"pattern": "\\bfoo\\b", "bytes": true, "tree": [["AT", "AT_BOUNDARY"], ["LITERAL", 102], ["LITERAL", 111], ["LITERAL", 111], ["AT", "AT_BOUNDARY"]], "text": "foo", "spans": [[0, 3]]}, {"pattern": "\\Bfoo", "bytes": false, "tree": [["AT", "AT_NON_BOUNDARY"], ["LITERAL", 102], ["LITERAL", 111], ["LITERAL", 111]], "text": "xfoo", "spans": [[1, 4]]}, {"pattern": "\\Bfoo", "bytes": false, "tree": [["AT", "AT_NON_BOUNDARY"], ["LITERAL", 102], ["LITERAL", 111], ["LITERAL", 111]], "text": "foo", "spans": null}, {"pattern": "\\Bfoo", "bytes": true, "tree": [["AT", "AT_NON_BOUNDARY"], ["LITERAL", 102], ["LITERAL", 111], ["LITERAL", 111]], "text": "xfoo", "spans": [[1, 4]]}, {"pattern": "\\Bfoo", "bytes": true, "tree": [["AT", "AT_NON_BOUNDARY"], ["LITERAL", 102], ["LITERAL", 111], ["LITERAL", 111]], "text": "foo", "spans": null}, {"pattern": "\\s+", "bytes": false, "tree": [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_SPACE"]]]]]]], "text": "a \t\u001cb", "spans": [[1, 4]]}, {"pattern": "\\s+", "bytes": false, "tree": [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_SPACE"]]]]]]], "text": "ab", "spans": null}, {"pattern": "\\s+", "bytes": true, "tree": [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_SPACE"]]]]]]], "text": "a \t\u001cb", "spans": [[1, 3]]}, {"pattern": "\\s+", "bytes": true, "tree": [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_SPACE"]]]]]]], "text": "ab", "spans": null}, {"pattern": "\\S+\\s*=\\s*\\S+", "bytes": false, "tree": [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_NOT_SPACE"]]]]]], ["MAX_REPEAT", [0, -1, [["IN", [["CATEGORY", "CATEGORY_SPACE"]]]]]], ["LITERAL", 61], ["MAX_REPEAT", [0, -1, [["IN", [["CATEGORY", "CATEGORY_SPACE"]]]]]], ["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_NOT_SPACE"]]]]]]], "text": "  key = value ", "spans": [[2, 13]]}, {"pattern": "\\S+\\s*=\\s*\\S+", "bytes": true, "tree": [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_NOT_SPACE"]]]]]], ["MAX_REPEAT", [0, -1, [["IN", [["CATEGORY", "CATEGORY_SPACE"]]]]]], ["LITERAL", 61], ["MAX_REPEAT", [0, -1, [["IN", [["CATEGORY", "CATEGORY_SPACE"]]]]]], ["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_NOT_SPACE"]]]]]]], "text": "  key = value ", "spans": [[2, 13]]}, {"pattern": "(?:ab)+", "bytes": false, "tree": [["MAX_REPEAT", [1, -1, [["LITERAL", 97], ["LITERAL", 98]]]]], "text": "ababab", "spans": [[0, 6]]}, {"pattern": "(?:ab)+", "bytes": true, "tree": [["MAX_REPEAT", [1, -1, [["LITERAL", 97], ["LITERAL", 98]]]]], "text": "ababab", "spans": [[0, 6]]}, {"pattern": "(a)|(b)", "bytes": false, "tree": [["BRANCH", [[["SUBPATTERN", [1, [["LITERAL", 97]]]]], [["SUBPATTERN", [2, [["LITERAL", 98]]]]]]]], "text": "b", "spans": [[0, 1], null, [0, 1]], "template": "\\1-\\2", "expanded": "-b"}, {"pattern": "(a)|(b)", "bytes": true, "tree": [["BRANCH", [[["SUBPATTERN", [1, [["LITERAL", 97]]]]], [["SUBPATTERN", [2, [["LITERAL", 98]]]]]]]], "text": "b", "spans": [[0, 1], null, [0, 1]], "template": "\\1-\\2", "expanded": "-b"}, {"pattern": "(?>a+)b", "bytes": false, "tree": [["ATOMIC_GROUP", [["MAX_REPEAT", [1, -1, [["LITERAL", 97]]]]]], ["LITERAL", 98]], "text": "aaab", "spans": [[0, 4]]}, {"pattern": "(?>a+)b", "bytes": true, "tree": [["ATOMIC_GROUP", [["MAX_REPEAT", [1, -1, [["LITERAL", 97]]]]]], ["LITERAL", 98]], "text": "aaab", "spans": [[0, 4]]}, {"pattern": "(?>a+)a", "bytes": false, "tree": [["ATOMIC_GROUP", [["MAX_REPEAT", [1, -1, [["LITERAL", 97]]]]]], ["LITERAL", 97]], "text": "aaa", "spans": null}, {"pattern": "(?>a+)a", "bytes": true, "tree": [["ATOMIC_GROUP", [["MAX_REPEAT", [1, -1, [["LITERAL", 97]]]]]], ["LITERAL", 97]], "text": "aaa", "spans": null}, {"pattern": "a++a", "bytes": false, "tree": [["POSSESSIVE_REPEAT", [1, -1, [["LITERAL", 97]]]], ["LITERAL", 97]], "text": "aaa", "spans": null}, {"pattern": "a++a", "bytes": true, "tree": [["POSSESSIVE_REPEAT", [1, -1, [["LITERAL", 97]]]], ["LITERAL", 97]], "text": "aaa", "spans": null}, {"pattern": "a*+b", "bytes": false, "tree": [["POSSESSIVE_REPEAT", [0, -1, [["LITERAL", 97]]]], ["LITERAL", 98]], "text": "aab", "spans": [[0, 3]]}, {"pattern": "a*+b", "bytes": true, "tree": [["POSSESSIVE_REPEAT", [0, -1, [["LITERAL", 97]]]], ["LITERAL", 98]], "text": "aab", "spans": [[0, 3]]}, {"pattern": "(a*)*b", "bytes": false, "tree": [["MAX_REPEAT", [0, -1, [["SUBPATTERN", [1, [["MAX_REPEAT", [0, -1, [["LITERAL", 97]]]]]]]]]], ["LITERAL", 98]], "text": "aab", "spans": [[0, 3], [2, 2]]}, {"pattern": "(a*)*b", "bytes": false, "tree": [["MAX_REPEAT", [0, -1, [["SUBPATTERN", [1, [["MAX_REPEAT", [0, -1, [["LITERAL", 97]]]]]]]]]], ["LITERAL", 98]], "text": "c", "spans": null}, {"pattern": "(a*)*b", "bytes": true, "tree": [["MAX_REPEAT", [0, -1, [["SUBPATTERN", [1, [["MAX_REPEAT", [0, -1, [["LITERAL", 97]]]]]]]]]], ["LITERAL", 98]], "text": "aab", "spans": [[0, 3], [2, 2]]}, {"pattern": "(a*)*b", "bytes": true, "tree": [["MAX_REPEAT", [0, -1, [["SUBPATTERN", [1, [["MAX_REPEAT", [0, -1, [["LITERAL", 97]]]]]]]]]], ["LITERAL", 98]], "text": "c", "spans": null}, {"pattern": "(a?)+?b", "bytes": false, "tree": [["MIN_REPEAT", [1, -1, [["SUBPATTERN", [1, [["MAX_REPEAT", [0, 1, [["LITERAL", 97]]]]]]]]]], ["LITERAL", 98]], "text": "aab", "spans": [[0, 3], [1, 2]]}, {"pattern": "(a?)+?b", "bytes": true, "tree": [["MIN_REPEAT", [1, -1, [["SUBPATTERN", [1, [["MAX_REPEAT", [0, 1, [["LITERAL", 97]]]]]]]]]], ["LITERAL", 98]], "text": "aab", "spans": [[0, 3], [1, 2]]}, {"pattern": "\\Aab\\Z", "bytes": false, "tree": [["AT", "AT_BEGINNING_STRING"], ["LITERAL", 97], ["LITERAL", 98], ["AT", "AT_END_STRING"]], "text": "ab", "spans": [[0, 2]]}, {"pattern": "\\Aab\\Z", "bytes": false, "tree": [["AT", "AT_BEGINNING_STRING"], ["LITERAL", 97], ["LITERAL", 98], ["AT", "AT_END_STRING"]], "text": "ab\n", "spans": null}, {"pattern": "\\Aab\\Z", "bytes": true, "tree": [["AT", "AT_BEGINNING_STRING"], ["LITERAL", 97], ["LITERAL", 98], ["AT", "AT_END_STRING"]], "text": "ab", "spans": [[0, 2]]}, {"pattern": "\\Aab\\Z", "bytes": true, "tree": [["AT", "AT_BEGINNING_STRING"], ["LITERAL", 97], ["LITERAL", 98], ["AT", "AT_END_STRING"]], "text": "ab\n", "spans": null}, {"pattern": "^$", "bytes": false, "tree": [["AT", "AT_BEGINNING"], ["AT", "AT_END"]], "text": "", "spans": [[0, 0]]}, {"pattern": "^$", "bytes": false, "tree": [["AT", "AT_BEGINNING"], ["AT", "AT_END"]], "text": "\n", "spans": [[0, 0]]}, {"pattern": "^$", "bytes": true, "tree": [["AT", "AT_BEGINNING"], ["AT", "AT_END"]], "text": "", "spans": [[0, 0]]}, {"pattern": "^$", "bytes": true, "tree": [["AT", "AT_BEGINNING"], ["AT", "AT_END"]], "text": "\n", "spans": [[0, 0]]}, {"pattern": "$", "bytes": false, "tree": [["AT", "AT_END"]], "text": "abc\n", "spans": [[3, 3]]}, {"pattern": "$", "bytes": true, "tree": [["AT", "AT_END"]], "text": "abc\n", "spans": [[3, 3]]}, {"pattern": "\\d\\D\\w\\W", "bytes": false, "tree": [["IN", [["CATEGORY", "CATEGORY_DIGIT"]]], ["IN", [["CATEGORY", "CATEGORY_NOT_DIGIT"]]], ["IN", [["CATEGORY", "CATEGORY_WORD"]]], ["IN", [["CATEGORY", "CATEGORY_NOT_WORD"]]]], "text": "1a_ !", "spans": [[0, 4]]}, {"pattern": "\\d\\D\\w\\W", "bytes": false, "tree": [["IN", [["CATEGORY", "CATEGORY_DIGIT"]]], ["IN", [["CATEGORY", "CATEGORY_NOT_DIGIT"]]], ["IN", [["CATEGORY", "CATEGORY_WORD"]]], ["IN", [["CATEGORY", "CATEGORY_NOT_WORD"]]]], "text": "12a!", "spans": null}, {"pattern": "\\d\\D\\w\\W", "bytes": true, "tree": [["IN", [["CATEGORY", "CATEGORY_DIGIT"]]], ["IN", [["CATEGORY", "CATEGORY_NOT_DIGIT"]]], ["IN", [["CATEGORY", "CATEGORY_WORD"]]], ["IN", [["CATEGORY", "CATEGORY_NOT_WORD"]]]], "text": "1a_ !", "spans": [[0, 4]]}, {"pattern": "\\d\\D\\w\\W", "bytes": true, "tree": [["IN", [["CATEGORY", "CATEGORY_DIGIT"]]], ["IN", [["CATEGORY", "CATEGORY_NOT_DIGIT"]]], ["IN", [["CATEGORY", "CATEGORY_WORD"]]], ["IN", [["CATEGORY", "CATEGORY_NOT_WORD"]]]], "text": "12a!", "spans": null}, {"pattern": "[^\\n]*", "bytes": false, "tree": [["MAX_REPEAT", [0, -1, [["NOT_LITERAL", 10]]]]], "text": "abc\ndef", "spans": [[0, 3]]}, {"pattern": "[^\\n]*", "bytes": true, "tree": [["MAX_REPEAT", [0, -1, [["NOT_LITERAL", 10]]]]], "text": "abc\ndef", "spans": [[0, 3]]}, {"pattern": "^#?ListenAddress", "bytes": false, "tree": [["AT", "AT_BEGINNING"], ["MAX_REPEAT", [0, 1, [["LITERAL", 35]]]], ["LITERAL", 76], ["LITERAL", 105], ["LITERAL", 115], ["LITERAL", 116], ["LITERAL", 101], ["LITERAL", 110], ["LITERAL", 65], ["LITERAL", 100], ["LITERAL", 100], ["LITERAL", 114], ["LITERAL", 101], ["LITERAL", 115], ["LITERAL", 115]], "text": "#ListenAddress 0.0.0.0\n", "spans": [[0, 14]]}, {"pattern": "^#?ListenAddress", "bytes": true, "tree": [["AT", "AT_BEGINNING"], ["MAX_REPEAT", [0, 1, [["LITERAL", 35]]]], ["LITERAL", 76], ["LITERAL", 105], ["LITERAL", 115], ["LITERAL", 116], ["LITERAL", 101], ["LITERAL", 110], ["LITERAL", 65], ["LITERAL", 100], ["LITERAL", 100], ["LITERAL", 114], ["LITERAL", 101], ["LITERAL", 115], ["LITERAL", 115]], "text": "#ListenAddress 0.0.0.0\n", "spans": [[0, 14]]}, {"pattern": "(\\w+) (\\w+)", "bytes": false, "tree": [["SUBPATTERN", [1, [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_WORD"]]]]]]]]], ["LITERAL", 32], ["SUBPATTERN", [2, [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_WORD"]]]]]]]]]], "text": "hello world", "spans": [[0, 11], [0, 5], [6, 11]], "template": "\\2 \\1\\n\\t\\\\x", "expanded": "world hello\n\t\\x"}, {"pattern": "(\\w+) (\\w+)", "bytes": true, "tree": [["SUBPATTERN", [1, [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_WORD"]]]]]]]]], ["LITERAL", 32], ["SUBPATTERN", [2, [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_WORD"]]]]]]]]]], "text": "hello world", "spans": [[0, 11], [0, 5], [6, 11]], "template": "\\2 \\1\\n\\t\\\\x", "expanded": "world hello\n\t\\x"}, {"pattern": "(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)", "bytes": false, "tree": [["SUBPATTERN", [1, [["LITERAL", 97]]]], ["SUBPATTERN", [2, [["LITERAL", 98]]]], ["SUBPATTERN", [3, [["LITERAL", 99]]]], ["SUBPATTERN", [4, [["LITERAL", 100]]]], ["SUBPATTERN", [5, [["LITERAL", 101]]]], ["SUBPATTERN", [6, [["LITERAL", 102]]]], ["SUBPATTERN", [7, [["LITERAL", 103]]]], ["SUBPATTERN", [8, [["LITERAL", 104]]]], ["SUBPATTERN", [9, [["LITERAL", 105]]]], ["SUBPATTERN", [10, [["LITERAL", 106]]]], ["SUBPATTERN", [11, [["LITERAL", 107]]]]], "text": "abcdefghijk", "spans": [[0, 11], [0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 6], [6, 7], [7, 8], [8, 9], [9, 10], [10, 11]], "template": "\\11\\10\\1\\0101", "expanded": "kja\b1"}, {"pattern": "(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)", "bytes": true, "tree": [["SUBPATTERN", [1, [["LITERAL", 97]]]], ["SUBPATTERN", [2, [["LITERAL", 98]]]], ["SUBPATTERN", [3, [["LITERAL", 99]]]], ["SUBPATTERN", [4, [["LITERAL", 100]]]], ["SUBPATTERN", [5, [["LITERAL", 101]]]], ["SUBPATTERN", [6, [["LITERAL", 102]]]], ["SUBPATTERN", [7, [["LITERAL", 103]]]], ["SUBPATTERN", [8, [["LITERAL", 104]]]], ["SUBPATTERN", [9, [["LITERAL", 105]]]], ["SUBPATTERN", [10, [["LITERAL", 106]]]], ["SUBPATTERN", [11, [["LITERAL", 107]]]]], "text": "abcdefghijk", "spans": [[0, 11], [0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 6], [6, 7], [7, 8], [8, 9], [9, 10], [10, 11]], "template": "\\11\\10\\1\\0101", "expanded": "kja\b1"}, {"pattern": "(a)", "bytes": false, "tree": [["SUBPATTERN", [1, [["LITERAL", 97]]]]], "text": "a", "spans": [[0, 1], [0, 1]], "template": "\\2", "expanded": "ERROR error: invalid group reference 2 at position 1"}, {"pattern": "(a)", "bytes": true, "tree": [["SUBPATTERN", [1, [["LITERAL", 97]]]]], "text": "a", "spans": [[0, 1], [0, 1]], "template": "\\2", "expanded": "ERROR error: invalid group reference 2 at position 1"}, {"pattern": "(a)", "bytes": false, "tree": [["SUBPATTERN", [1, [["LITERAL", 97]]]]], "text": "a", "spans": [[0, 1], [0, 1]], "template": "\\q", "expanded": "ERROR error: bad escape \\q at position 0"}, {"pattern": "(a)", "bytes": true, "tree": [["SUBPATTERN", [1, [["LITERAL", 97]]]]], "text": "a", "spans": [[0, 1], [0, 1]], "template": "\\q", "expanded": "ERROR error: bad escape \\q at position 0"}, {"pattern": "(a)", "bytes": false, "tree": [["SUBPATTERN", [1, [["LITERAL", 97]]]]], "text": "a", "spans": [[0, 1], [0, 1]], "template": "\\.\\g<0>", "expanded": "\\.a"}, {"pattern": "(a)", "bytes": true, "tree": [["SUBPATTERN", [1, [["LITERAL", 97]]]]], "text": "a", "spans": [[0, 1], [0, 1]], "template": "\\.\\g<0>", "expanded": "\\.a"}, {"pattern": "(a)", "bytes": false, "tree": [["SUBPATTERN", [1, [["LITERAL", 97]]]]], "text": "a", "spans": [[0, 1], [0, 1]], "template": "x\\", "expanded": "ERROR error: bad escape (end of pattern) at position 1"}, {"pattern": "(a)", "bytes": true, "tree": [["SUBPATTERN", [1, [["LITERAL", 97]]]]], "text": "a", "spans": [[0, 1], [0, 1]], "template": "x\\", "expanded": "ERROR error: bad escape (end of pattern) at position 1"}, {"pattern": "\u00e9+", "bytes": false, "tree": [["MAX_REPEAT", [1, -1, [["LITERAL", 233]]]]], "text": "\u00e9\u00e9\u00e9", "spans": [[0, 3]]}, {"pattern": "\u00e9+", "bytes": true, "tree": [["MAX_REPEAT", [1, -1, [["LITERAL", 233]]]]], "text": "\u00e9\u00e9\u00e9", "spans": [[0, 3]]}, {"pattern": "[\u00e0-\u00ff]+", "bytes": false, "tree": [["MAX_REPEAT", [1, -1, [["IN", [["RANGE", [224, 255]]]]]]]], "text": "abc\u00e9\u00e8", "spans": [[3, 5]]}, {"pattern": "[\u00e0-\u00ff]+", "bytes": true, "tree": [["MAX_REPEAT", [1, -1, [["IN", [["RANGE", [224, 255]]]]]]]], "text": "abc\u00e9\u00e8", "spans": [[3, 5]]}, {"pattern": "\\d+", "bytes": false, "tree": [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_DIGIT"]]]]]]], "text": "x\u0661\u0662\u0663y", "spans": [[1, 4]]}, {"pattern": "\\w+", "bytes": false, "tree": [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_WORD"]]]]]]], "text": "__\u00f1\u00e91", "spans": [[0, 5]]}, {"pattern": "\\w+", "bytes": true, "tree": [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_WORD"]]]]]]], "text": "__\u00f1\u00e91", "spans": [[0, 2]]}, {"pattern": "(?:a|b|)+c", "bytes": false, "tree": [["MAX_REPEAT", [1, -1, [["BRANCH", [[["LITERAL", 97]], [["LITERAL", 98]], []]]]]], ["LITERAL", 99]], "text": "abc", "spans": [[0, 3]]}, {"pattern": "(?:a|b|)+c", "bytes": false, "tree": [["MAX_REPEAT", [1, -1, [["BRANCH", [[["LITERAL", 97]], [["LITERAL", 98]], []]]]]], ["LITERAL", 99]], "text": "c", "spans": [[0, 1]]}, {"pattern": "(?:a|b|)+c", "bytes": true, "tree": [["MAX_REPEAT", [1, -1, [["BRANCH", [[["LITERAL", 97]], [["LITERAL", 98]], []]]]]], ["LITERAL", 99]], "text": "abc", "spans": [[0, 3]]}, {"pattern": "(?:a|b|)+c", "bytes": true, "tree": [["MAX_REPEAT", [1, -1, [["BRANCH", [[["LITERAL", 97]], [["LITERAL", 98]], []]]]]], ["LITERAL", 99]], "text": "c", "spans": [[0, 1]]}, {"pattern": "(\\d+)-(\\d+)?", "bytes": false, "tree": [["SUBPATTERN", [1, [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_DIGIT"]]]]]]]]], ["LITERAL", 45], ["MAX_REPEAT", [0, 1, [["SUBPATTERN", [2, [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_DIGIT"]]]]]]]]]]]]], "text": "12-", "spans": [[0, 3], [0, 2], null], "template": "<\\1><\\2>", "expanded": "<12><>"}, {"pattern": "(\\d+)-(\\d+)?", "bytes": true, "tree": [["SUBPATTERN", [1, [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_DIGIT"]]]]]]]]], ["LITERAL", 45], ["MAX_REPEAT", [0, 1, [["SUBPATTERN", [2, [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_DIGIT"]]]]]]]]]]]]], "text": "12-", "spans": [[0, 3], [0, 2], null], "template": "<\\1><\\2>", "expanded": "<12><>"}, {"pattern": "[-a]", "bytes": false, "tree": [["IN", [["LITERAL", 45], ["LITERAL", 97]]]], "text": "b-", "spans": [[1, 2]]}, {"pattern": "[-a]", "bytes": true, "tree": [["IN", [["LITERAL", 45], ["LITERAL", 97]]]], "text": "b-", "spans": [[1, 2]]}, {"pattern": "[]a]", "bytes": false, "tree": [["IN", [["LITERAL", 93], ["LITERAL", 97]]]], "text": "]", "spans": [[0, 1]]}, {"pattern": "[]a]", "bytes": true, "tree": [["IN", [["LITERAL", 93], ["LITERAL", 97]]]], "text": "]", "spans": [[0, 1]]}, {"pattern": "colou?r", "bytes": false, "tree": [["LITERAL", 99], ["LITERAL", 111], ["LITERAL", 108], ["LITERAL", 111], ["MAX_REPEAT", [0, 1, [["LITERAL", 117]]]], ["LITERAL", 114]], "text": "color colour", "spans": [[0, 5]]}, {"pattern": "colou?r", "bytes": true, "tree": [["LITERAL", 99], ["LITERAL", 111], ["LITERAL", 108], ["LITERAL", 111], ["MAX_REPEAT", [0, 1, [["LITERAL", 117]]]], ["LITERAL", 114]], "text": "color colour", "spans": [[0, 5]]}, {"pattern": "(x)*", "bytes": false, "tree": [["MAX_REPEAT", [0, -1, [["SUBPATTERN", [1, [["LITERAL", 120]]]]]]]], "text": "xxx", "spans": [[0, 3], [2, 3]], "template": "\\1", "expanded": "x"}, {"pattern": "(x)*", "bytes": true, "tree": [["MAX_REPEAT", [0, -1, [["SUBPATTERN", [1, [["LITERAL", 120]]]]]]]], "text": "xxx", "spans": [[0, 3], [2, 3]], "template": "\\1", "expanded": "x"}]"##;
}
