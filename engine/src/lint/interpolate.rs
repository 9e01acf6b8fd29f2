//! Compose variable interpolation (`$VAR`, `${VAR:-default}`, ...) for the values the linter reads.
//!
//! The syntax follows the compose specification's interpolation chapter (compose-spec
//! `12-interpolation.md`): `${VAR:-d}` and `${VAR-d}` give defaults, `${VAR:?e}` and `${VAR?e}`
//! require a value, `${VAR:+r}` and `${VAR+r}` substitute when set, `$$` is a literal `$`.
//! Compose replaces an unset variable by an empty string and only warns, so a port written as
//! `${PORT}:80` silently becomes an ephemeral port; the linter keeps the same substitution but
//! records every variable it could not resolve so the report can say the check was incomplete.

/// A variable the environment did not provide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unresolved {
    pub name: String,
    /// The message of a required variable (`${VAR:?message}`), which makes compose refuse the file.
    pub required: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interpolated {
    pub value: String,
    pub unresolved: Vec<Unresolved>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TemplateError {
    #[error("`${{` is never closed: write `${{NAME}}` or `${{NAME:-default}}`, or `$$` for a literal `$`")]
    Unclosed,
    #[error("`${{{0}}}` is not a variable reference: names are letters, digits and `_`, not starting with a digit")]
    BadName(String),
}

/// Substitute every reference in `input`, looking variables up with `lookup`.
pub(crate) fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, TemplateError> {
    let mut out = Interpolated { value: String::with_capacity(input.len()), unresolved: Vec::new() };
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.value.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.value.push('$');
            rest = tail;
        } else if let Some(body_and_tail) = after.strip_prefix('{') {
            let end = closing_brace(body_and_tail).ok_or(TemplateError::Unclosed)?;
            braced(&body_and_tail[..end], lookup, &mut out)?;
            rest = &body_and_tail[end + 1..];
        } else {
            let len = name_len(after);
            if len == 0 {
                // A `$` that starts no reference stays as written, as compose leaves it.
                out.value.push('$');
                rest = after;
            } else {
                let name = &after[..len];
                match lookup(name) {
                    Some(v) => out.value.push_str(&v),
                    None => out.unresolved.push(Unresolved { name: name.to_owned(), required: None }),
                }
                rest = &after[len..];
            }
        }
    }
    out.value.push_str(rest);
    Ok(out)
}

/// Index of the `}` that closes a `${`, skipping nested `${...}` inside defaults.
fn closing_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn name_len(s: &str) -> usize {
    let mut len = 0;
    for (i, c) in s.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        len = i + c.len_utf8();
    }
    len
}

fn braced(
    body: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut Interpolated,
) -> Result<(), TemplateError> {
    let len = name_len(body);
    if len == 0 {
        return Err(TemplateError::BadName(body.to_owned()));
    }
    let (name, op) = body.split_at(len);
    let value = lookup(name);
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let unresolved = |required: Option<&str>| Unresolved {
        name: name.to_owned(),
        required: required.map(|m| if m.is_empty() { format!("{name} is required") } else { m.to_owned() }),
    };
    // Operators with a colon treat an empty value like an unset one; those without only look at "set".
    let (use_value, word, kind) = if op.is_empty() {
        (value.is_some(), "", ' ')
    } else if let Some(w) = op.strip_prefix(":-") {
        (set_nonempty, w, '-')
    } else if let Some(w) = op.strip_prefix(":?") {
        (set_nonempty, w, '?')
    } else if let Some(w) = op.strip_prefix(":+") {
        (set_nonempty, w, '+')
    } else if let Some(w) = op.strip_prefix('-') {
        (value.is_some(), w, '-')
    } else if let Some(w) = op.strip_prefix('?') {
        (value.is_some(), w, '?')
    } else if let Some(w) = op.strip_prefix('+') {
        (value.is_some(), w, '+')
    } else {
        return Err(TemplateError::BadName(body.to_owned()));
    };
    match (kind, use_value) {
        ('+', true) => append_nested(word, lookup, out)?,
        ('+', false) => {}
        (_, true) => out.value.push_str(value.as_deref().unwrap_or_default()),
        ('-', false) => append_nested(word, lookup, out)?,
        ('?', false) => out.unresolved.push(unresolved(Some(word))),
        (_, false) => out.unresolved.push(unresolved(None)),
    }
    Ok(())
}

fn append_nested(
    word: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut Interpolated,
) -> Result<(), TemplateError> {
    let nested = interpolate(word, lookup)?;
    out.value.push_str(&nested.value);
    out.unresolved.extend(nested.unresolved);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("9000".into()),
            "EMPTY" => Some(String::new()),
            "HOST_IP" => Some("127.0.0.1".into()),
            _ => None,
        }
    }

    #[rstest]
    #[case("8080:80", "8080:80", &[])]
    #[case("${PORT}:80", "9000:80", &[])]
    #[case("$PORT:80", "9000:80", &[])]
    #[case("${PORT:-8080}:80", "9000:80", &[])]
    #[case("${NOPE:-8080}:80", "8080:80", &[])]
    #[case("${EMPTY:-8080}:80", "8080:80", &[])]
    #[case("${EMPTY-8080}:80", ":80", &[])]
    #[case("${NOPE-8080}:80", "8080:80", &[])]
    #[case("${NOPE}:80", ":80", &["NOPE"])]
    #[case("${NOPE:-${PORT}}:80", "9000:80", &[])]
    #[case("${NOPE:-${ALSO_NOPE:-7070}}:80", "7070:80", &[])]
    #[case("${HOST_IP}:${PORT:-1}:80", "127.0.0.1:9000:80", &[])]
    #[case("${PORT:+1}${NOPE:+2}80", "180", &[])]
    #[case("$$PORT", "$PORT", &[])]
    #[case("${NOPE:?set NOPE}:80", ":80", &["NOPE"])]
    #[case("a$-b", "a$-b", &[])]
    fn substitutes(#[case] input: &str, #[case] expected: &str, #[case] unresolved: &[&str]) {
        let got = interpolate(input, &env).unwrap();
        assert_eq!(got.value, expected);
        let names: Vec<&str> = got.unresolved.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, unresolved);
    }

    #[test]
    fn required_keeps_its_message() {
        let got = interpolate("${NOPE:?the web port}", &env).unwrap();
        assert_eq!(got.unresolved[0].required.as_deref(), Some("the web port"));
        let got = interpolate("${NOPE?}", &env).unwrap();
        assert_eq!(got.unresolved[0].required.as_deref(), Some("NOPE is required"));
    }

    #[rstest]
    #[case("${PORT", TemplateError::Unclosed)]
    #[case("${1X}", TemplateError::BadName("1X".into()))]
    #[case("${PORT!x}", TemplateError::BadName("PORT!x".into()))]
    fn rejects(#[case] input: &str, #[case] expected: TemplateError) {
        assert_eq!(interpolate(input, &env).unwrap_err(), expected);
    }
}
