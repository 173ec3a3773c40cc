/// The version of hpvm: the one place it is written. `hpvm --version` prints it, each command's
/// `--version` shows it, and `scripts/package` names the Debian package after it.
public enum HPVMVersion {
    public static let current = "1.0.0"
}
