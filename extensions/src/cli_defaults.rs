//! Safe defaults for the cluster binaries' command lines.

/// Returns `args` with `--bind-host 127.0.0.1` added unless a bind host was
/// given: the stock Ballista binaries listen on every interface by default,
/// ours only on loopback unless told otherwise.
pub fn loopback_unless_told(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut args: Vec<String> = args.into_iter().collect();
    let told = args
        .iter()
        .any(|a| a == "--bind-host" || a.starts_with("--bind-host="));
    if !told && !args.is_empty() {
        args.insert(1, "--bind-host".into());
        args.insert(2, "127.0.0.1".into());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_loopback_only_when_absent() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            loopback_unless_told(v(&["bin", "--bind-port", "1"])),
            v(&["bin", "--bind-host", "127.0.0.1", "--bind-port", "1"])
        );
        assert_eq!(
            loopback_unless_told(v(&["bin", "--bind-host=0.0.0.0"])),
            v(&["bin", "--bind-host=0.0.0.0"])
        );
    }
}
