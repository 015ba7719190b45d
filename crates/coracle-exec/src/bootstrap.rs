//! Recognising the command line the kfp SDK generates for lightweight Python components.
//!
//! The SDK emits (see `kfp.dsl.component_factory`):
//!
//! ```text
//! sh -c "<ensurepip prelude> PIP_DISABLE_PIP_VERSION_CHECK=1 <pip install commands> && \"$0\" \"$@\"" \
//!    sh -ec "<write $0 to ephemeral_component.py; _KFP_RUNTIME=true python3 -m kfp.dsl.executor_main ...>" \
//!    <python source> <args...>
//! ```
//!
//! where the pip install commands are one or two `python3 -m pip install --quiet
//! --no-warn-script-location [index options] 'req' ...` joined by ` && `, optionally with the
//! `use_venv` prelude before the kfp install. Without any package to install the `sh -c` part is
//! absent. [`parse_kfp_bootstrap`] accepts exactly these shapes and nothing else; anything else
//! that merely looks like a Python component goes through [`scan_pip_requirements`], a lenient
//! scan used only to pick a managed environment.

/// The pieces of a recognised lightweight-component command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KfpBootstrap {
    /// `X` of a `'kfp==X'` requirement; `None` when kfp is not pinned that way (for example
    /// `install_kfp_package=False`, or a kfp requirement among the user's packages).
    pub kfp_version: Option<String>,
    /// Every other requirement, in command order, without the SDK's own
    /// `typing-extensions…; python_version<"3.9"` line. A non-pinned kfp requirement stays here.
    pub packages: Vec<String>,
    /// Index options (`--index-url U`, `--extra-index-url U`, `--trusted-host H`) in order,
    /// each option followed by its value, duplicates removed. `--no-deps` is dropped: managed
    /// environments are installed with dependencies.
    pub pip_options: Vec<String>,
    /// The command used the SDK's `use_venv=True` prelude.
    pub use_venv: bool,
    /// The component's Python source (what the program writes to `ephemeral_component.py`).
    pub source: String,
    /// Arguments for `kfp.dsl.executor_main` after `--component_module_path`.
    pub args: Vec<String>,
}

const ENSUREPIP_PRELUDE: &str = "\nif ! [ -x \"$(command -v pip)\" ]; then\n    python3 -m ensurepip || python3 -m ensurepip --user || apt-get install python3-pip\nfi\n\nPIP_DISABLE_PIP_VERSION_CHECK=1 ";
const RUN_TAIL: &str = " && \"$0\" \"$@\"\n";
const VENV_PRELUDE: &str = "\nexport PIP_DISABLE_PIP_VERSION_CHECK=1\ntmp=$(mktemp -d)\npython3 -m venv \"$tmp/venv\" --system-site-packages\n. \"$tmp/venv/bin/activate\"\n";
const EXECUTOR_PROGRAM: &str = "program_path=$(mktemp -d)\n\nprintf \"%s\" \"$0\" > \"$program_path/ephemeral_component.py\"\n_KFP_RUNTIME=true python3 -m kfp.dsl.executor_main --component_module_path \"$program_path/ephemeral_component.py\" \"$@\"\n";
const PIP_INSTALL_PREFIX: [&str; 6] = [
    "python3",
    "-m",
    "pip",
    "install",
    "--quiet",
    "--no-warn-script-location",
];
const SDK_TYPING_EXTENSIONS: &str = "typing-extensions>=3.7.4,<5; python_version<\"3.9\"";
/// pip options that take a value, as the SDK writes them.
const VALUE_OPTIONS: [&str; 3] = ["--index-url", "--extra-index-url", "--trusted-host"];

/// Recognises the standard bootstrap exactly; `None` for anything else.
pub fn parse_kfp_bootstrap(argv: &[String]) -> Option<KfpBootstrap> {
    let (install, rest) = match argv {
        [sh, dash_c, script, rest @ ..] if sh == "sh" && dash_c == "-c" => {
            (Some(parse_install_script(script)?), rest)
        }
        _ => (None, argv),
    };
    let [sh, dash_ec, program, source, args @ ..] = rest else {
        return None;
    };
    if sh != "sh" || dash_ec != "-ec" || !same_words(program, EXECUTOR_PROGRAM) {
        return None;
    }
    let install = install.unwrap_or_default();
    Some(KfpBootstrap {
        kfp_version: install.kfp_version,
        packages: install.packages,
        pip_options: install.pip_options,
        use_venv: install.use_venv,
        source: source.clone(),
        args: args.to_vec(),
    })
}

/// Whether a command line looks like a kfp lightweight Python component even though
/// [`parse_kfp_bootstrap`] does not recognise it.
pub fn looks_like_kfp_python(argv: &[String]) -> bool {
    argv.iter()
        .any(|arg| arg.contains("kfp.dsl.executor_main") || arg.contains("ephemeral_component.py"))
}

#[derive(Debug, Default)]
struct InstallScript {
    kfp_version: Option<String>,
    packages: Vec<String>,
    pip_options: Vec<String>,
    use_venv: bool,
}

fn parse_install_script(script: &str) -> Option<InstallScript> {
    let middle = script
        .strip_prefix(ENSUREPIP_PRELUDE)?
        .strip_suffix(RUN_TAIL)?;
    let mut result = InstallScript::default();
    let middle = match middle.split_once(VENV_PRELUDE) {
        Some((before, after)) => {
            result.use_venv = true;
            // The prelude follows a ` && ` (or starts the script) and precedes the kfp install.
            if after.contains(VENV_PRELUDE) {
                return None;
            }
            format!("{before} {after}")
        }
        None => middle.to_string(),
    };
    let tokens = shell_words(&middle)?;
    let commands: Vec<&[Token]> = tokens.split(|token| token.is_and()).collect();
    for command in commands {
        let words: Vec<&str> = command
            .iter()
            .map(|token| token.word())
            .collect::<Option<_>>()?;
        let arguments = words.strip_prefix(&PIP_INSTALL_PREFIX[..])?;
        let mut arguments = arguments.iter();
        let mut saw_requirement = false;
        while let Some(&argument) = arguments.next() {
            if VALUE_OPTIONS.contains(&argument) {
                let value = arguments.next()?;
                push_option(&mut result.pip_options, argument, value);
            } else if argument == "--no-deps" {
            } else if argument.starts_with('-') {
                return None;
            } else {
                saw_requirement = true;
                add_requirement(&mut result, argument);
            }
        }
        if !saw_requirement {
            return None;
        }
    }
    Some(result)
}

fn push_option(options: &mut Vec<String>, option: &str, value: &str) {
    let already = options
        .chunks(2)
        .any(|pair| pair[0] == option && pair[1] == value);
    if !already {
        options.push(option.to_string());
        options.push(value.to_string());
    }
}

fn add_requirement(result: &mut InstallScript, requirement: &str) {
    if requirement == SDK_TYPING_EXTENSIONS {
        return;
    }
    if let Some(version) = requirement.strip_prefix("kfp==")
        && !version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '+' || c == '!')
        && result.kfp_version.is_none()
    {
        result.kfp_version = Some(version.to_string());
        return;
    }
    if !result.packages.iter().any(|known| known == requirement) {
        result.packages.push(requirement.to_string());
    }
}

/// The requirements and index options a command line would `pip install`, found leniently, for
/// commands that [`parse_kfp_bootstrap`] does not recognise. Never fails: what cannot be read is
/// skipped.
pub fn scan_pip_requirements(argv: &[String]) -> (Option<String>, Vec<String>, Vec<String>) {
    let mut result = InstallScript::default();
    for arg in argv {
        if !arg.contains("pip install") {
            continue;
        }
        for line in arg.lines() {
            for segment in line.split("&&") {
                let Some((_, after)) = segment.split_once("pip install") else {
                    continue;
                };
                let after = cut_at_unquoted_operator(after);
                // Exact shell words when the segment allows it, else whitespace-separated pieces.
                let pieces: Vec<String> = match shell_words(after) {
                    Some(tokens) => tokens
                        .iter()
                        .filter_map(Token::word)
                        .map(String::from)
                        .collect(),
                    None => after
                        .split_whitespace()
                        .map(|piece| piece.trim_matches(['\'', '"']).to_string())
                        .collect(),
                };
                let mut words = pieces.iter().map(String::as_str);
                while let Some(word) = words.next() {
                    if VALUE_OPTIONS.contains(&word) {
                        if let Some(value) = words.next() {
                            push_option(&mut result.pip_options, word, value);
                        }
                    } else if word.starts_with('-') || word.contains('$') || word.contains('/') {
                        // Other options, variables and paths cannot be part of an env's key.
                    } else {
                        add_requirement(&mut result, word);
                    }
                }
            }
        }
    }
    (result.kfp_version, result.packages, result.pip_options)
}

/// The part of `text` before its first unquoted shell operator (`;`, `|`, `&`, redirections,
/// comments, subshells).
fn cut_at_unquoted_operator(text: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (index, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (Some('\''), '\'') => quote = None,
            (Some('\''), _) => {}
            (Some(_), '\\') => escaped = true,
            (Some(_), '"') => quote = None,
            (Some(_), _) => {}
            (None, '\\') => escaped = true,
            (None, '\'' | '"') => quote = Some(c),
            (None, ';' | '|' | '&' | '<' | '>' | '#' | '(' | ')') => return &text[..index],
            (None, _) => {}
        }
    }
    text
}

/// Compares two shell snippets ignoring how whitespace is laid out (the SDK's generated
/// program has changed indentation between versions, never words).
fn same_words(actual: &str, expected: &str) -> bool {
    actual.split_whitespace().eq(expected.split_whitespace())
}

/// A shell word, with whether any part of it was quoted (a quoted `&&` is not an operator).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    quoted: bool,
}

impl Token {
    fn is_and(&self) -> bool {
        !self.quoted && self.text == "&&"
    }

    /// The word, or `None` for the `&&` operator.
    fn word(&self) -> Option<&str> {
        if self.is_and() {
            None
        } else {
            Some(&self.text)
        }
    }
}

/// Splits a POSIX shell snippet into words, understanding '…', "…" (with backslash escapes)
/// and bare words. Returns `None` for anything that needs more of the shell than that
/// (expansions, redirections, other operators), so a match is never a guess.
fn shell_words(input: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(tokens);
        }
        let mut text = String::new();
        let mut quoted = false;
        while let Some(&c) = chars.peek() {
            match c {
                c if c.is_whitespace() => break,
                '\'' => {
                    chars.next();
                    quoted = true;
                    loop {
                        match chars.next()? {
                            '\'' => break,
                            other => text.push(other),
                        }
                    }
                }
                '"' => {
                    chars.next();
                    quoted = true;
                    loop {
                        match chars.next()? {
                            '"' => break,
                            '\\' => match chars.next()? {
                                escaped @ ('"' | '\\' | '$' | '`') => text.push(escaped),
                                '\n' => {}
                                other => {
                                    text.push('\\');
                                    text.push(other);
                                }
                            },
                            '$' | '`' => return None,
                            other => text.push(other),
                        }
                    }
                }
                '\\' => {
                    chars.next();
                    match chars.next()? {
                        '\n' => {}
                        other => text.push(other),
                    }
                }
                '$' | '`' | ';' | '|' | '<' | '>' | '(' | ')' | '#' | '*' | '?' | '[' => {
                    return None;
                }
                '&' => {
                    chars.next();
                    if !text.is_empty() || chars.next() != Some('&') {
                        return None;
                    }
                    text.push_str("&&");
                    break;
                }
                other => {
                    chars.next();
                    text.push(other);
                }
            }
        }
        tokens.push(Token { text, quoted });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(input: &str) -> Option<Vec<String>> {
        shell_words(input).map(|tokens| {
            tokens
                .into_iter()
                .map(|Token { text, quoted }| if quoted { format!("<{text}>") } else { text })
                .collect()
        })
    }

    #[test]
    fn shell_words_handles_quotes_and_operators() {
        assert_eq!(
            words(r#"a 'b c' "d \"e\"" f&&g && 'h&&'"#),
            None,
            "`f&&g` glues an operator to a word"
        );
        assert_eq!(
            words(r#"a 'b c' "d \"e\"" f && 'h&&'"#).unwrap(),
            ["a", "<b c>", "<d \"e\">", "f", "&&", "<h&&>"]
        );
        assert_eq!(words("echo $HOME"), None);
        assert_eq!(words("a > b"), None);
        assert_eq!(words("'unterminated"), None);
    }

    fn standard_argv(script: &str) -> Vec<String> {
        let program = "program_path=$(mktemp -d)\n\nprintf \"%s\" \"$0\" > \"$program_path/ephemeral_component.py\"\n_KFP_RUNTIME=true python3 -m kfp.dsl.executor_main                         --component_module_path                         \"$program_path/ephemeral_component.py\"                         \"$@\"\n";
        [
            "sh",
            "-c",
            script,
            "sh",
            "-ec",
            program,
            "def f(): pass\n",
            "--function_to_execute",
            "f",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    }

    fn script(pip: &str) -> String {
        format!("{ENSUREPIP_PRELUDE}{pip}{RUN_TAIL}")
    }

    #[test]
    fn recognises_the_plain_bootstrap() {
        let argv = standard_argv(&script(
            "python3 -m pip install --quiet --no-warn-script-location 'kfp==2.14.6' '--no-deps' 'typing-extensions>=3.7.4,<5; python_version<\"3.9\"'",
        ));
        let parsed = parse_kfp_bootstrap(&argv).unwrap();
        assert_eq!(parsed.kfp_version.as_deref(), Some("2.14.6"));
        assert!(parsed.packages.is_empty());
        assert!(parsed.pip_options.is_empty());
        assert_eq!(parsed.source, "def f(): pass\n");
        assert_eq!(parsed.args, ["--function_to_execute", "f"]);
    }

    #[test]
    fn rejects_anything_else_in_the_script() {
        for pip in [
            "python3 -m pip install --quiet --no-warn-script-location 'kfp==2.14.6'; rm -rf /",
            "python3 -m pip install --quiet --no-warn-script-location 'kfp==2.14.6' && echo hi",
            "python3 -m pip install --quiet --no-warn-script-location --user 'kfp==2.14.6'",
            "python3 -m pip install --quiet --no-warn-script-location",
            "pip install 'kfp==2.14.6'",
        ] {
            assert_eq!(
                parse_kfp_bootstrap(&standard_argv(&script(pip))),
                None,
                "{pip}"
            );
        }
        let mut argv = standard_argv(&script(
            "python3 -m pip install --quiet --no-warn-script-location 'kfp==2.14.6'",
        ));
        argv[5] = "python3 -c 'print(1)'".into();
        assert_eq!(parse_kfp_bootstrap(&argv), None);
    }

    #[test]
    fn recognises_the_bootstrap_without_installs() {
        let argv = standard_argv("");
        let parsed = parse_kfp_bootstrap(&argv[3..]).unwrap();
        assert_eq!(parsed.kfp_version, None);
        assert!(parsed.packages.is_empty());
    }

    #[test]
    fn a_kfp_requirement_among_user_packages_stays_a_package() {
        let argv = standard_argv(&script(
            "python3 -m pip install --quiet --no-warn-script-location 'kfp[kubernetes]>=2' 'numpy'",
        ));
        let parsed = parse_kfp_bootstrap(&argv).unwrap();
        assert_eq!(parsed.kfp_version, None);
        assert_eq!(parsed.packages, ["kfp[kubernetes]>=2", "numpy"]);
    }

    #[test]
    fn lenient_scan_finds_requirements() {
        let argv: Vec<String> = vec![
            "sh".into(),
            "-c".into(),
            "pip install --index-url https://x/simple 'kfp==2.9.0' pandas $EXTRA && python3 -m kfp.dsl.executor_main".into(),
        ];
        let (kfp, packages, options) = scan_pip_requirements(&argv);
        assert_eq!(kfp.as_deref(), Some("2.9.0"));
        assert_eq!(packages, ["pandas"]);
        assert_eq!(options, ["--index-url", "https://x/simple"]);
        assert!(looks_like_kfp_python(&argv));

        let argv: Vec<String> = vec![
            "sh".into(),
            "-c".into(),
            "python3 -m pip install --no-cache-dir 'kfp==2.14.6' '--no-deps' 'typing-extensions>=3.7.4,<5; python_version<\"3.9\"' 'numpy<2; sys_platform == \"linux\"'; echo done | cat".into(),
        ];
        let (kfp, packages, _) = scan_pip_requirements(&argv);
        assert_eq!(kfp.as_deref(), Some("2.14.6"));
        assert_eq!(packages, ["numpy<2; sys_platform == \"linux\""]);
    }
}
