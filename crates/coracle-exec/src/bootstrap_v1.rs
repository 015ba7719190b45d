//! Recognising the package prelude of KFP v1 lightweight components
//! (`create_component_from_func(..., packages_to_install=[...])`, kfp 1.x):
//!
//! ```text
//! sh -c "(PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet \
//!          --no-warn-script-location 'pkg' … || <the same> --user) && \"$0\" \"$@\"" \
//!    sh -ec "program_path=$(mktemp) … python3 -u \"$program_path\" \"$@\"" <source> <args…>
//! ```
//!
//! The requirements pick a managed environment that has them; the command then runs as
//! written in it, with pip told not to reach an index, so its own `pip install` finds them
//! satisfied (offline too, once the environment exists).

const PIP_INSTALL: &str =
    "PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location ";

/// The requirements of a v1 package prelude, in command order; `None` when `argv` does not
/// start with one followed by a Python program.
pub fn parse_v1_pip_prelude(argv: &[String]) -> Option<Vec<String>> {
    let [sh, dash_c, script, rest @ ..] = argv else {
        return None;
    };
    if sh != "sh" || dash_c != "-c" {
        return None;
    }
    let inner = script
        .strip_prefix('(')?
        .strip_suffix(") && \"$0\" \"$@\"")?;
    let (first, second) = inner.split_once(" || ")?;
    let requirements = first.strip_prefix(PIP_INSTALL)?;
    let again = second.strip_prefix(PIP_INSTALL)?.strip_suffix(" --user")?;
    if requirements != again {
        return None;
    }
    let packages = quoted_words(requirements)?;
    let runs_python = rest.iter().take(3).any(|arg| arg.contains("python3"));
    (!packages.is_empty() && runs_python).then_some(packages)
}

/// Words written as Python `repr`s of strings: `'a' "b'c"`.
fn quoted_words(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let quote = rest.chars().next()?;
        if quote != '\'' && quote != '"' {
            return None;
        }
        let end = rest[1..].find(quote)? + 1;
        words.push(rest[1..end].to_string());
        rest = rest[end + 1..].trim_start();
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(script: &str) -> Vec<String> {
        [
            "sh",
            "-c",
            script,
            "sh",
            "-ec",
            "program_path=$(mktemp)\nprintf \"%s\" \"$0\" > \"$program_path\"\npython3 -u \"$program_path\" \"$@\"\n",
            "def f(): pass",
            "--a",
            "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn kfp_1_8_prelude() {
        // As kfp 1.8.22 writes it for packages_to_install=["six==1.16.0", "requests"].
        let script = "(PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location 'six==1.16.0' 'requests' || PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location 'six==1.16.0' 'requests' --user) && \"$0\" \"$@\"";
        assert_eq!(
            parse_v1_pip_prelude(&argv(script)),
            Some(vec!["six==1.16.0".to_string(), "requests".to_string()])
        );
        let quoted = script.replace("'requests'", "\"it's\"");
        assert_eq!(
            parse_v1_pip_prelude(&argv(&quoted)),
            Some(vec!["six==1.16.0".to_string(), "it's".to_string()])
        );
    }

    #[test]
    fn other_commands_are_not_v1_preludes() {
        let different = "(PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location 'a' || PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location 'b' --user) && \"$0\" \"$@\"";
        assert_eq!(parse_v1_pip_prelude(&argv(different)), None);
        assert_eq!(parse_v1_pip_prelude(&argv("echo hi")), None);
        let unquoted = "(PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location six || PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location six --user) && \"$0\" \"$@\"";
        assert_eq!(parse_v1_pip_prelude(&argv(unquoted)), None);
        let short: Vec<String> = vec!["sh".into(), "-c".into()];
        assert_eq!(parse_v1_pip_prelude(&short), None);
    }
}
