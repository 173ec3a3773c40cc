public import Host
#if canImport(Glibc)
internal import Glibc
#endif

/// Creating files under a host root without being led out of it.
enum HostFiles {
    /// Creates a new, empty regular file `base` in `folder` (a folder identity resolved under the
    /// root) and returns its descriptor for writing.
    ///
    /// The folder must be a real folder under the root with no symlink left on the way (so the
    /// kernel cannot follow one out of the root), and the file must not exist.
    static func create(in folder: StorageIdentity, base: String, root: HostRoot, shown: String) throws(RegistryError) -> Int32 {
        let realFolder = root.real(folder.resolvedPath)
        guard let canonical = realpath(realFolder, nil) else {
            throw RegistryError(.io, "cannot create \(Display.safe(shown)): \(String(cString: strerror(errno))).")
        }
        let canonicalText = String(cString: canonical)
        free(canonical)
        guard canonicalText == realFolder || canonicalText + "/" == realFolder else {
            throw RegistryError(
                .restricted,
                "cannot create \(Display.safe(shown)): its folder leads outside the host root \(Display.safe(root.path)) (\(Display.safe(canonicalText))).")
        }
        let directory = open(realFolder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directory >= 0 else {
            throw RegistryError(.io, "cannot create \(Display.safe(shown)): \(String(cString: strerror(errno))).")
        }
        defer { close(directory) }
        let fd = openat(directory, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw RegistryError(.io, "cannot create \(Display.safe(shown)): \(String(cString: strerror(errno))).")
        }
        return fd
    }
}
