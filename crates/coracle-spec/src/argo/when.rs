//! Argo `when` expressions, as KFP v1 writes them, turned into the CEL of an IR trigger
//! condition.
//!
//! Argo substitutes every `{{…}}` tag with its text and evaluates the result with govaluate.
//! KFP v1 writes `"{{tasks.flip.outputs.parameters.flip-Output}}" == "heads"` for strings and
//! `{{inputs.parameters.n}} > 2` for numbers. We accept that subset: quoted strings (which may
//! hold tags), bare tags, numbers, `true`/`false`, `== != < <= > >=`, `!`, `&&`, `||` and
//! parentheses. A comparison with a quoted string compares text; otherwise numbers (a bare
//! tag's text read as a number, as govaluate reads it); a bare tag alone, or compared with a
//! boolean, is true when its text is `true`. Each tag becomes a task input the condition reads
//! as `inputs.parameter_values['…']`.

use super::refs::{self, Piece, Ref};

/// Operands and operators.
#[derive(Clone, Debug, PartialEq)]
enum Token {
    /// A quoted string: text and tags.
    Quoted(Vec<Piece>),
    /// A bare `{{…}}` tag.
    Tag(Ref, String),
    Number(String),
    Bool(bool),
    Op(&'static str),
    Open,
    Close,
}

/// A comparison operand.
#[derive(Clone, Debug, PartialEq)]
enum Operand {
    Quoted(Vec<Piece>),
    Tag(Ref, String),
    Number(String),
    Bool(bool),
}

#[derive(Clone, Debug, PartialEq)]
enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Compare(&'static str, Operand, Operand),
    Value(Operand),
}

/// Translates `when` into CEL. `input` gives the name of the task input that carries a tag's
/// value (registering it).
pub(crate) fn to_cel(
    when: &str,
    input: &mut dyn FnMut(&Ref, &str) -> Result<String, String>,
) -> Result<String, String> {
    let tokens = tokenize(when)?;
    let mut parser = Parser { tokens, at: 0 };
    let expr = parser.or()?;
    if parser.at < parser.tokens.len() {
        return Err(format!(
            "unexpected {} after a complete condition",
            describe(&parser.tokens[parser.at])
        ));
    }
    render(&expr, input)
}

fn describe(token: &Token) -> String {
    match token {
        Token::Quoted(_) => "a quoted string".into(),
        Token::Tag(_, tag) => tag.clone(),
        Token::Number(n) => format!("number {n}"),
        Token::Bool(b) => b.to_string(),
        Token::Op(op) => format!("\"{op}\""),
        Token::Open => "\"(\"".into(),
        Token::Close => "\")\"".into(),
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let rest: String = chars[i..].iter().collect();
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' {
            let Some(len) = chars[i + 1..].iter().position(|d| *d == c) else {
                return Err("a quoted string is not closed".into());
            };
            let inner: String = chars[i + 1..i + 1 + len].iter().collect();
            tokens.push(Token::Quoted(refs::parse(&inner)?));
            i += len + 2;
        } else if rest.starts_with("{{") {
            let Some(end) = rest.find("}}") else {
                return Err("a \"{{\" is not closed".into());
            };
            let tag = &rest[..end + 2];
            let pieces = refs::parse(tag)?;
            let Some(reference) = refs::single(&pieces) else {
                return Err(format!("cannot read {tag}"));
            };
            tokens.push(Token::Tag(reference.clone(), tag.to_string()));
            i += tag.chars().count();
        } else if c.is_ascii_digit()
            || (c == '-'
                && chars.get(i + 1).is_some_and(char::is_ascii_digit)
                && !matches!(
                    tokens.last(),
                    Some(Token::Quoted(_) | Token::Tag(..) | Token::Number(_) | Token::Close)
                ))
        {
            let mut end = i + 1;
            while end < chars.len() && (chars[end].is_ascii_digit() || chars[end] == '.') {
                end += 1;
            }
            let number: String = chars[i..end].iter().collect();
            if number.parse::<f64>().is_err() {
                return Err(format!("{number} is not a number"));
            }
            tokens.push(Token::Number(number));
            i = end;
        } else if c == '(' {
            tokens.push(Token::Open);
            i += 1;
        } else if c == ')' {
            tokens.push(Token::Close);
            i += 1;
        } else if rest.starts_with("=~") || rest.starts_with("!~") {
            return Err("regular expression operators (=~, !~) are not supported".into());
        } else if let Some(op) = ["==", "!=", ">=", "<=", "&&", "||", ">", "<", "!"]
            .into_iter()
            .find(|op| rest.starts_with(op))
        {
            tokens.push(Token::Op(op));
            i += op.len();
        } else if c.is_ascii_alphabetic() {
            let mut end = i;
            while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_') {
                end += 1;
            }
            let word: String = chars[i..end].iter().collect();
            match word.as_str() {
                "true" => tokens.push(Token::Bool(true)),
                "false" => tokens.push(Token::Bool(false)),
                _ => {
                    return Err(format!(
                        "unquoted word \"{word}\" (quote strings, as KFP v1 does)"
                    ));
                }
            }
            i = end;
        } else {
            return Err(format!("unexpected character {c:?}"));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat_op(&mut self, op: &'static str) -> bool {
        if self.peek() == Some(&Token::Op(op)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut items = vec![self.and()?];
        while self.eat_op("||") {
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut items = vec![self.not()?];
        while self.eat_op("&&") {
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.eat_op("!") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.compare()
    }

    fn compare(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let inner = self.or()?;
            if self.peek() != Some(&Token::Close) {
                return Err("a \"(\" is not closed".into());
            }
            self.at += 1;
            return Ok(inner);
        }
        let left = self.operand()?;
        for op in ["==", "!=", ">=", "<=", ">", "<"] {
            if self.eat_op(op) {
                let right = self.operand()?;
                return Ok(Expr::Compare(op, left, right));
            }
        }
        Ok(Expr::Value(left))
    }

    fn operand(&mut self) -> Result<Operand, String> {
        let token = self
            .peek()
            .cloned()
            .ok_or("the condition ends where a value was expected")?;
        self.at += 1;
        Ok(match token {
            Token::Quoted(pieces) => Operand::Quoted(pieces),
            Token::Tag(r, tag) => Operand::Tag(r, tag),
            Token::Number(n) => Operand::Number(n),
            Token::Bool(b) => Operand::Bool(b),
            other => return Err(format!("expected a value, found {}", describe(&other))),
        })
    }
}

fn cel_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn cel_number(n: &str) -> String {
    if n.contains('.') {
        n.to_string()
    } else {
        format!("{n}.0")
    }
}

fn render(
    expr: &Expr,
    input: &mut dyn FnMut(&Ref, &str) -> Result<String, String>,
) -> Result<String, String> {
    let mut value = |r: &Ref, tag: &str| -> Result<String, String> {
        Ok(format!("inputs.parameter_values['{}']", input(r, tag)?))
    };
    Ok(match expr {
        Expr::Or(items) | Expr::And(items) => {
            let joiner = if matches!(expr, Expr::Or(_)) {
                " || "
            } else {
                " && "
            };
            let parts = items
                .iter()
                .map(|e| render(e, input).map(|s| format!("({s})")))
                .collect::<Result<Vec<_>, _>>()?;
            parts.join(joiner)
        }
        Expr::Not(inner) => format!("!({})", render(inner, input)?),
        Expr::Value(Operand::Tag(r, tag)) => format!("string({}) == 'true'", value(r, tag)?),
        Expr::Value(Operand::Bool(b)) => b.to_string(),
        Expr::Value(_) => return Err("a condition must compare values".into()),
        Expr::Compare(op, left, right) => {
            let quoted = |o: &Operand| matches!(o, Operand::Quoted(_));
            let boolean = |o: &Operand| matches!(o, Operand::Bool(_));
            let mode = if quoted(left) || quoted(right) {
                Mode::Text
            } else if boolean(left) || boolean(right) {
                Mode::Bool
            } else {
                Mode::Number
            };
            let mut side = |o: &Operand| -> Result<String, String> {
                Ok(match (mode, o) {
                    (Mode::Text, Operand::Quoted(pieces)) => {
                        if pieces.is_empty() {
                            return Ok("''".into());
                        }
                        let mut parts = Vec::new();
                        for piece in pieces {
                            parts.push(match piece {
                                Piece::Text(t) => cel_string(t),
                                Piece::Ref(r, tag) => format!("string({})", value(r, tag)?),
                            });
                        }
                        parts.join(" + ")
                    }
                    (Mode::Text, Operand::Tag(r, tag)) => format!("string({})", value(r, tag)?),
                    (Mode::Text, Operand::Number(n)) => cel_string(n),
                    (Mode::Text | Mode::Bool, Operand::Bool(b)) => {
                        if mode == Mode::Text {
                            cel_string(&b.to_string())
                        } else {
                            b.to_string()
                        }
                    }
                    (Mode::Bool, Operand::Tag(r, tag)) => {
                        format!("(string({}) == 'true')", value(r, tag)?)
                    }
                    (Mode::Bool, Operand::Number(_)) => {
                        return Err("a number cannot be compared with a boolean".into());
                    }
                    (Mode::Number, Operand::Tag(r, tag)) => format!("double({})", value(r, tag)?),
                    (Mode::Number, Operand::Number(n)) => cel_number(n),
                    (_, Operand::Quoted(_)) | (Mode::Number, Operand::Bool(_)) => {
                        unreachable!("the mode follows the operands")
                    }
                })
            };
            let l = side(left)?;
            let r = side(right)?;
            if mode == Mode::Bool && !matches!(*op, "==" | "!=") {
                return Err(format!("booleans cannot be compared with \"{op}\""));
            }
            format!("{l} {op} {r}")
        }
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Text,
    Number,
    Bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cel(when: &str) -> String {
        let mut names = Vec::new();
        let mut input = |r: &Ref, _tag: &str| -> Result<String, String> {
            let name = match r {
                Ref::TaskParameter { name, .. } => name.clone(),
                Ref::InputParameter(n) => n.clone(),
                other => format!("{other:?}"),
            };
            names.push(name.clone());
            Ok(name)
        };
        match to_cel(when, &mut input) {
            Ok(s) => s,
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn kfp_v1_conditions() {
        assert_eq!(
            cel(r#""{{tasks.flip.outputs.parameters.flip-Output}}" == "heads""#),
            "string(inputs.parameter_values['flip-Output']) == 'heads'"
        );
        assert_eq!(
            cel("{{inputs.parameters.n}} > 2"),
            "double(inputs.parameter_values['n']) > 2.0"
        );
        assert_eq!(
            cel("{{inputs.parameters.n}} >= -1.5"),
            "double(inputs.parameter_values['n']) >= -1.5"
        );
        assert_eq!(
            cel(r#""{{inputs.parameters.x}}" != "{{inputs.parameters.y}}""#),
            "string(inputs.parameter_values['x']) != string(inputs.parameter_values['y'])"
        );
        assert_eq!(
            cel(
                r#"("a-{{inputs.parameters.x}}" == 'a-b') && !({{inputs.parameters.n}} < 3) || {{inputs.parameters.f}}"#
            ),
            "(('a-' + string(inputs.parameter_values['x']) == 'a-b') && (!(double(inputs.parameter_values['n']) < 3.0))) || (string(inputs.parameter_values['f']) == 'true')"
        );
        assert_eq!(
            cel("{{inputs.parameters.f}} == true"),
            "(string(inputs.parameter_values['f']) == 'true') == true"
        );
    }

    #[test]
    fn refused_conditions() {
        assert_eq!(
            cel("{{inputs.parameters.x}} == heads"),
            "error: unquoted word \"heads\" (quote strings, as KFP v1 does)"
        );
        assert_eq!(
            cel(r#""{{inputs.parameters.x}}" =~ "a.*""#),
            "error: regular expression operators (=~, !~) are not supported"
        );
        assert_eq!(
            cel("({{inputs.parameters.n}} > 2"),
            "error: a \"(\" is not closed"
        );
        assert_eq!(
            cel("{{inputs.parameters.n}} > 2 3"),
            "error: unexpected number 3 after a complete condition"
        );
        assert_eq!(cel("'a'"), "error: a condition must compare values");
    }
}
