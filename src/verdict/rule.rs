//! A threshold rule and its grammar:
//!
//! ```text
//! rule   := [scope "."] metric op bound ["over" window]
//! scope  := "fleet" | "client"
//! op     := "<" | "<=" | ">" | ">=" | "=="
//! bound  := number | "baseline" ["*" number]
//! window := integer ("s" | "m")          (1 s to 24 h)
//! ```
//!
//! e.g. `fleet.p99_ms < 50`, `fleet.mb_s >= 400 over 60s`, `client.mb_s >= 80`,
//! `verify_errors == 0`, `fleet.p99_ms <= baseline * 1.1`. A bound is a plain number in the
//! metric's unit (the unit is in the metric's name or listed with it). An error names the
//! position in the rule (a caret under it), the valid metrics and the unit expected.

use std::fmt;

use super::metrics::{metric, metric_list, Metric, Scope};

/// Longest rule, characters.
pub const MAX_RULE_CHARS: usize = 256;
/// Most rules a server takes.
pub const MAX_RULES: usize = 64;
/// Longest window, seconds (24 h).
pub const MAX_WINDOW_S: u32 = 86_400;

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
}

impl Op {
    /// Whether `value op bound` holds.
    pub fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Op::Lt => value < bound,
            Op::Le => value <= bound,
            Op::Gt => value > bound,
            Op::Ge => value >= bound,
            Op::Eq => value == bound,
        }
    }

    /// Whether a figure that can only grow, once it fails this comparison, fails it for good:
    /// an upper bound (`<`, `<=`), or `==` once above.
    pub fn fails_for_good(self, value: f64, bound: f64) -> bool {
        match self {
            Op::Lt | Op::Le => !self.holds(value, bound),
            Op::Eq => value > bound,
            Op::Gt | Op::Ge => false,
        }
    }
}

/// A rule's bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// A number in the metric's unit.
    Value(f64),
    /// The baseline's figure times `factor` (`baseline * 1.1`; `baseline` alone: 1).
    Baseline(f64),
}

/// A parsed rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The rule as given, trimmed.
    pub text: String,
    /// Whom it is about.
    pub scope: Scope,
    /// What it reads.
    pub metric: &'static Metric,
    /// The comparison.
    pub op: Op,
    /// The bound.
    pub bound: Bound,
    /// `over Ns`: judged over the last this many seconds at each check; `None`: over the run.
    pub window_s: Option<u32>,
}

/// A rule that does not parse: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The rule as given.
    pub rule: String,
    /// Where the trouble is, in characters from the start.
    pub at: usize,
    /// What is wrong, with what was expected.
    pub message: String,
    /// Whether to list the valid metrics after the message.
    pub list_metrics: bool,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "threshold rule: {}", self.message)?;
        writeln!(f, "  {}", self.rule)?;
        write!(f, "  {}^", " ".repeat(self.at))?;
        if self.list_metrics {
            write!(
                f,
                "\nvalid metrics (bounds in the unit shown):\n{}",
                metric_list()
            )?;
            write!(
                f,
                "a rule is [fleet.|client.]METRIC OP BOUND [over Ns], OP one of < <= > >= ==, \
                 BOUND a number or baseline [* FACTOR]"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleError {}

/// A cursor over a rule's characters (ASCII: checked first).
struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        while self.s[self.at..].starts_with(' ') || self.s[self.at..].starts_with('\t') {
            self.at += 1;
        }
    }

    fn rest(&self) -> &'a str {
        &self.s[self.at..]
    }

    /// The longest run of characters that `ok` takes.
    fn take(&mut self, ok: impl Fn(char) -> bool) -> &'a str {
        let start = self.at;
        let len = self.rest().find(|c| !ok(c)).unwrap_or(self.rest().len());
        self.at += len;
        &self.s[start..self.at]
    }

    fn eat(&mut self, word: &str) -> bool {
        let hit = self.rest().starts_with(word);
        if hit {
            self.at += word.len();
        }
        hit
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_number(c: char) -> bool {
    c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'
}

impl Rule {
    /// Parses `text`.
    ///
    /// # Errors
    /// A [`RuleError`] with the position of the trouble.
    ///
    /// # Examples
    /// ```
    /// use loadmon::verdict::Rule;
    /// let r = Rule::parse("fleet.mb_s >= 400 over 60s").unwrap();
    /// assert_eq!((r.metric.name, r.window_s), ("mb_s", Some(60)));
    /// let e = Rule::parse("fleet.p99 < 50").unwrap_err();
    /// assert!(e.to_string().contains("unknown metric `p99`"));
    /// ```
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        let trimmed = text.trim();
        let err = |at: usize, message: String, list_metrics: bool| RuleError {
            rule: trimmed.chars().take(MAX_RULE_CHARS).collect(),
            at,
            message,
            list_metrics,
        };
        if let Some(at) = trimmed
            .chars()
            .position(|c| !c.is_ascii() || c.is_ascii_control())
        {
            return Err(err(at, "only printable ASCII characters".into(), false));
        }
        if trimmed.len() > MAX_RULE_CHARS {
            let m = format!("a rule is at most {MAX_RULE_CHARS} characters");
            return Err(err(MAX_RULE_CHARS, m, false));
        }
        if trimmed.is_empty() {
            return Err(err(0, "empty rule: expected a metric".into(), true));
        }
        let mut c = Cursor { s: trimmed, at: 0 };
        let (scope, metric) = parse_target(&mut c).map_err(|(at, m, l)| err(at, m, l))?;
        c.skip_ws();
        let op = parse_op(&mut c).map_err(|(at, m)| err(at, m, false))?;
        c.skip_ws();
        let bound = parse_bound(&mut c, metric).map_err(|(at, m)| err(at, m, false))?;
        c.skip_ws();
        let window_s = parse_window(&mut c, scope, metric).map_err(|(at, m)| err(at, m, false))?;
        c.skip_ws();
        if !c.rest().is_empty() {
            let m = "unexpected text after the rule: expected `over Ns` or the end".into();
            return Err(err(c.at, m, false));
        }
        Ok(Rule {
            text: trimmed.to_string(),
            scope,
            metric,
            op,
            bound,
            window_s,
        })
    }

    /// Whether the bound refers to the baseline.
    pub fn uses_baseline(&self) -> bool {
        matches!(self.bound, Bound::Baseline(_))
    }
}

type Failure = (usize, String);

/// `[scope "."] metric`.
fn parse_target(c: &mut Cursor) -> Result<(Scope, &'static Metric), (usize, String, bool)> {
    let start = c.at;
    let first = c.take(is_word);
    let (scope, name_at, name) = if c.eat(".") {
        let scope = match first {
            "fleet" => Scope::Fleet,
            "client" => Scope::Client,
            _ => {
                let m = format!("unknown scope `{first}`: expected `fleet.` or `client.`");
                return Err((start, m, false));
            }
        };
        let at = c.at;
        (Some(scope), at, c.take(is_word))
    } else {
        (None, start, first)
    };
    if name.is_empty() {
        return Err((name_at, "expected a metric name".into(), true));
    }
    let Some(m) = metric(name) else {
        return Err((name_at, format!("unknown metric `{name}`"), true));
    };
    let scope = scope.unwrap_or(m.default_scope);
    if !m.has_scope(scope) {
        let msg = format!(
            "`{}` has no {} scope: it is {}",
            m.name,
            scope.as_str(),
            m.scopes()
        );
        return Err((start, msg, false));
    }
    Ok((scope, m))
}

fn parse_op(c: &mut Cursor) -> Result<Op, Failure> {
    for (word, op) in [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("<", Op::Lt),
        (">", Op::Gt),
    ] {
        if c.eat(word) {
            return Ok(op);
        }
    }
    let m = if c.rest().starts_with('=') || c.rest().starts_with('!') {
        "expected a comparison `<`, `<=`, `>`, `>=` or `==` (`=` alone is not one)"
    } else {
        "expected a comparison `<`, `<=`, `>`, `>=` or `==`"
    };
    Err((c.at, m.into()))
}

/// A finite number at the cursor; `what` names it in errors.
fn parse_number(c: &mut Cursor, what: &str) -> Result<f64, Failure> {
    let at = c.at;
    let word = c.take(is_number);
    match word.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err((at, format!("expected {what}, a number"))),
    }
}

fn parse_bound(c: &mut Cursor, m: &Metric) -> Result<Bound, Failure> {
    if c.eat("baseline") {
        c.skip_ws();
        if !c.eat("*") {
            return Ok(Bound::Baseline(1.0));
        }
        c.skip_ws();
        let at = c.at;
        let f = parse_number(c, "the baseline's factor")?;
        if f <= 0.0 {
            return Err((at, "the baseline's factor must be above 0".into()));
        }
        return Ok(Bound::Baseline(f));
    }
    let v = parse_number(c, &format!("the bound in {} (or `baseline`)", m.unit))?;
    let unit_at = c.at;
    let suffix = c.take(|ch| ch.is_ascii_alphabetic() || ch == '/' || ch == '%');
    if !suffix.is_empty() {
        let msg = format!(
            "the bound is a plain number in {}, the unit of `{}`: remove `{suffix}`",
            m.unit, m.name
        );
        return Err((unit_at, msg));
    }
    Ok(Bound::Value(v))
}

fn parse_window(c: &mut Cursor, scope: Scope, m: &Metric) -> Result<Option<u32>, Failure> {
    let at = c.at;
    if !c.eat("over") {
        return Ok(None);
    }
    if !m.windowed_in(scope) {
        let which: Vec<String> = super::metrics::METRICS
            .iter()
            .flat_map(|m| {
                [Scope::Fleet, Scope::Client]
                    .into_iter()
                    .filter(|s| m.windowed_in(*s))
                    .map(move |s| format!("{}.{}", s.as_str(), m.name))
            })
            .collect();
        let msg = format!(
            "`{}.{}` takes no window: windows are for {}",
            scope.as_str(),
            m.name,
            which.join(", ")
        );
        return Err((at, msg));
    }
    c.skip_ws();
    let n_at = c.at;
    let digits = c.take(|ch| ch.is_ascii_digit());
    let scale = if c.eat("s") {
        1
    } else if c.eat("m") {
        60
    } else {
        let msg = "expected a window in whole seconds or minutes: `60s`, `5m`";
        return Err((c.at, msg.into()));
    };
    let window = digits
        .parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|w| (1..=MAX_WINDOW_S).contains(w));
    match window {
        Some(w) => Ok(Some(w)),
        None => Err((n_at, format!("a window is 1 s to {MAX_WINDOW_S} s (24 h)"))),
    }
}

/// Parses every rule of `texts` (at most [`MAX_RULES`]).
///
/// # Errors
/// The first rule that does not parse, or too many rules.
pub fn parse_rules(texts: &[String]) -> Result<Vec<Rule>, String> {
    if texts.len() > MAX_RULES {
        return Err(format!(
            "at most {MAX_RULES} threshold rules, got {}",
            texts.len()
        ));
    }
    texts
        .iter()
        .map(|t| Rule::parse(t).map_err(|e| e.to_string()))
        .collect()
}
