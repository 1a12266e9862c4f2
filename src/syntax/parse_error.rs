//! Syntax errors: pest's failure turned into a diagnostic whose message names the expected
//! tokens in words (never grammar rule names), quotes what was found (briefly), labels an
//! unclosed bracket at the end of the file, and adds a `help:` for common slips.

use super::parser::{brackets, Rule};
use crate::diagnostics::{Code, Diagnostic, Diagnostics, FileId, Label, Span};

/// Turns a pest error into a diagnostic whose message spells the expected tokens in words.
pub(super) fn syntax_error(file: FileId, text: &str, err: pest::error::Error<Rule>) -> Diagnostics {
    let pos = match err.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let mut expected: Vec<String> = Vec::new();
    if let pest::error::ErrorVariant::ParsingError { positives, .. } = &err.variant {
        for rule in positives {
            if let Some(words) = describe(*rule) {
                push_unique(&mut expected, words.to_string());
            }
        }
    }
    if let Some(attempts) = err.parse_attempts() {
        for token in attempts.expected_tokens() {
            if let Some(words) = describe_literal(&token.to_string()) {
                push_unique(&mut expected, words);
            }
        }
    }
    let found = found_token(text, pos);
    let end = pos + found.len();
    let found_words = if found.is_empty() {
        "end of file".to_string()
    } else if found.chars().count() > 32 {
        let head: String = found.chars().take(32).collect();
        format!("`{}…`", head.escape_debug())
    } else {
        format!("`{}`", found.escape_debug())
    };
    const ITEM: &str = "an item (`net`, `block`, `cell`, `const` or `use`)";
    if expected.iter().any(|e| e == ITEM) || (expected.is_empty() && at_item_start(text, pos)) {
        expected = vec![ITEM.to_string()];
    }
    if expected.iter().any(|e| e == "an expression") {
        expected.retain(|e| e != "a name");
    }
    let message = if expected.is_empty() {
        format!("unexpected {found_words}")
    } else {
        format!("expected {}, found {found_words}", join_or(&expected))
    };
    let label = if found.is_empty() {
        "the file ends here".to_string()
    } else {
        "unexpected here".to_string()
    };
    let unclosed = if found.is_empty() {
        unclosed_bracket(text)
    } else {
        None
    };
    let message = match unclosed {
        Some((_, c)) => format!("unexpected end of file: `{c}` is not closed"),
        None => message,
    };
    let mut d = Diagnostic::error(
        Code::Syntax,
        message,
        Label::new(Span::new(file, pos, end), label),
    );
    if let Some((at, c)) = unclosed {
        d = d.with_label(Label::new(
            Span::new(file, at, at + 1),
            format!("this `{c}` is never closed"),
        ));
        d = d.with_help(format!("add the closing `{}`", closing(c)));
        return d.into();
    }
    if let Some(help) = syntax_help(text, pos, &found) {
        d = d.with_help(help);
    }
    d.into()
}

/// The innermost bracket left open at the end of `text` (skipping comments and strings).
fn unclosed_bracket(text: &str) -> Option<(usize, char)> {
    let mut stack: Vec<(usize, char)> = Vec::new();
    for (i, b) in brackets(text) {
        if matches!(b, b'(' | b'[' | b'{') {
            stack.push((i, b as char));
        } else {
            stack.pop();
        }
    }
    stack.pop()
}

fn closing(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        _ => '}',
    }
}

/// Whether `pos` is where a top-level item could start: outside every bracket.
fn at_item_start(text: &str, pos: usize) -> bool {
    let before = text.get(..pos).unwrap_or("");
    let open = before.matches(['{', '(', '[']).count();
    let close = before.matches(['}', ')', ']']).count();
    open <= close
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// "a, b or c".
fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

/// The token at `pos`: a word, a number, a run of operator characters, or one character.
fn found_token(text: &str, pos: usize) -> String {
    let rest = text.get(pos..).unwrap_or("");
    let mut chars = rest.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    if first.is_alphanumeric() || first == '_' {
        rest.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    } else if "-=!<>|&".contains(first) {
        let two: String = rest.chars().take(2).collect();
        if ["->", "==", "!=", "<=", ">=", "||", "&&"].contains(&two.as_str()) {
            two
        } else {
            first.to_string()
        }
    } else {
        first.to_string()
    }
}

/// A hint for common slips.
fn syntax_help(text: &str, pos: usize, found: &str) -> Option<String> {
    let after = text.get(pos + found.len()..).unwrap_or("").trim_start();
    if found == "=" {
        return Some("keyword arguments are written `name: value`; `==` compares".into());
    }
    if found == "-" && after.starts_with('>') {
        return Some("write `->` without a space between `-` and `>`".into());
    }
    if found.is_empty() {
        return Some("is a `}`, `)` or `]` missing?".into());
    }
    const KEYWORDS: &[&str] = &[
        "net", "block", "cell", "const", "use", "state", "step", "emit", "repeat", "else",
    ];
    if found.chars().all(|c| c.is_alphanumeric() || c == '_') {
        let best = KEYWORDS
            .iter()
            .filter(|k| **k != found && strsim::levenshtein(k, found) <= 1 + k.len() / 4)
            .min_by_key(|k| strsim::levenshtein(k, found));
        if let Some(k) = best {
            return Some(format!("did you mean `{k}`?"));
        }
    }
    None
}

/// Words for the grammar rules that can appear in error messages; `None` hides a rule.
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "end of file",
        Rule::ident | Rule::label => "a name",
        Rule::int => "an integer",
        Rule::float => "a number",
        Rule::string | Rule::string_inner => "a string",
        Rule::boolean => "`true` or `false`",
        Rule::expr
        | Rule::chain_elem
        | Rule::binary
        | Rule::unary
        | Rule::postfix
        | Rule::call
        | Rule::array
        | Rule::fill
        | Rule::branch
        | Rule::if_expr
        | Rule::repeat_expr
        | Rule::neg_op
        | Rule::not_op => "an expression",
        Rule::or_op
        | Rule::and_op
        | Rule::eq_op
        | Rule::ne_op
        | Rule::le_op
        | Rule::ge_op
        | Rule::lt_op
        | Rule::gt_op
        | Rule::add_op
        | Rule::sub_op
        | Rule::mul_op
        | Rule::div_op
        | Rule::rem_op
        | Rule::pow_op => "an operator",
        Rule::use_item
        | Rule::const_item
        | Rule::block_item
        | Rule::cell_item
        | Rule::net_item
        | Rule::docs
        | Rule::doc_line
        | Rule::stray_doc => "an item (`net`, `block`, `cell`, `const` or `use`)",
        Rule::kw_net => "`net`",
        Rule::kw_block => "`block`",
        Rule::kw_cell => "`cell`",
        Rule::kw_const => "`const`",
        Rule::kw_use => "`use`",
        Rule::kw_state | Rule::state_decl => "`state`",
        Rule::kw_step | Rule::step_decl => "`step`",
        Rule::kw_emit => return None,
        Rule::kw_if => "`if`",
        Rule::kw_else => "`else`",
        Rule::kw_repeat => "`repeat`",
        Rule::kw_as => "`as`",
        Rule::params => "a parameter list `(…)`",
        Rule::param => "a parameter",
        Rule::tensor_type | Rule::dtype => "a tensor type such as `f32[N, 3, 224, 224]`",
        Rule::scalar_type => "a type (`int`, `float`, `bool`, `str`)",
        Rule::outputs => "the output names",
        Rule::body | Rule::branch_body | Rule::branches => "`{`",
        Rule::branch_sep => "`|`",
        Rule::let_stmt | Rule::emit_stmt | Rule::expr_stmt => "a statement",
        Rule::args => "`(`",
        Rule::arg => "an argument",
        Rule::state_var => "a state variable `name = initial value`",
        Rule::branch_kw | Rule::fill_kw => "an expression",
        Rule::keyword
        | Rule::file
        | Rule::doc_text
        | Rule::WHITESPACE
        | Rule::COMMENT
        | Rule::line_comment
        | Rule::block_comment
        | Rule::item
        | Rule::type_ann
        | Rule::stmt
        | Rule::infix_op
        | Rule::prefix_op
        | Rule::primary
        | Rule::ident_char
        | Rule::exponent => return None,
    })
}

/// Words for literal tokens the grammar tried; only the structural ones are worth naming.
fn describe_literal(token: &str) -> Option<String> {
    const STRUCTURAL: &[&str] = &["->", "{", "}", "(", ")", "[", "]", ",", "=", ":", "|", ";"];
    STRUCTURAL.contains(&token).then(|| format!("`{token}`"))
}
