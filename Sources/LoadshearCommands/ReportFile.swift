import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where a report goes (`--json`, `--json-interval`): a file, or stdout for `-`. Opened
/// before the run starts, so a path that cannot be written is reported before anything
/// connects, not after an hour of load.
final class ReportFile: Sendable {
    /// As given: `-` for stdout.
    let path: String
    private let fd: Int32
    /// Whether it writes to stdout (`-`); stdout is never closed.
    var isStdout: Bool { fd == 1 }

    /// Why a report file could not be opened, as one sentence for the user.
    struct OpenError: Error, CustomStringConvertible {
        var description: String
    }

    /// Whether this process made the file (it did not exist): an abandoned one is removed.
    private let created: Bool
    /// Emptied yet (``begin()``): a file is emptied only once its run starts, so a command
    /// that fails before (a bad option, a taken port) leaves an earlier report untouched.
    private let begun = Mutex(false)

    private init(path: String, fd: Int32, created: Bool) {
        self.path = path
        self.fd = fd
        self.created = created
    }

    /// Opens (creating) `path` for writing; `-` is stdout. Nothing is emptied yet: see
    /// ``begin()``.
    static func open(_ path: String, what: String) throws -> ReportFile {
        if path == "-" { return ReportFile(path: path, fd: 1, created: false) }
        var created = true
        var fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0, errno == EEXIST {
            // There already (or a symbolic link, dangling perhaps, whose target is made now):
            // never removed by `abandon()`.
            created = false
            fd = Glibc.open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        }
        guard fd >= 0 else {
            throw OpenError(description: "cannot write \(what) to \(path): \(String(cString: strerror(errno)))")
        }
        return ReportFile(path: path, fd: fd, created: created)
    }

    /// The run starts: the file is emptied, so what it holds afterwards is this run's, even
    /// when the run writes nothing to it. Also done by the first write.
    func begin() {
        guard !isStdout else { return }
        begun.withLock { begun in
            if !begun { _ = ftruncate(fd, 0) }
            begun = true
        }
    }

    /// The command failed before its run began: the file is left as it was (removed if this
    /// process made it).
    func abandon() {
        guard !isStdout else { return }
        _ = Glibc.close(fd)
        if created, !begun.withLock({ $0 }) { _ = unlink(path) }
    }

    /// Two outputs that would land in one place (the same file, or both on stdout): a usage
    /// error naming both options, or nil. `outputs` are (option, path) in the order given;
    /// `inputs` are files the command reads, which an output must not replace.
    static func clash(_ outputs: [(option: String, path: String)], inputs: [String] = []) -> String? {
        for (k, a) in outputs.enumerated() {
            for b in outputs[(k + 1)...] where same(a.path, b.path) {
                return a.path == "-"
                    ? "\(a.option) - and \(b.option) - would both write to stdout; send one of them to a file"
                    : "\(a.option) and \(b.option) name the same file (\(b.path)); give each its own"
            }
            if a.path != "-", let input = inputs.first(where: { $0 != "-" && same(a.path, $0) }) {
                return "\(a.option) \(a.path) would overwrite the input \(input); write it elsewhere"
            }
        }
        return nil
    }

    /// Whether two paths name one file: by device and inode when both exist, by their
    /// absolute standardized spelling otherwise.
    private static func same(_ a: String, _ b: String) -> Bool {
        if a == "-" || b == "-" { return a == b }
        var sa = stat()
        var sb = stat()
        if stat(a, &sa) == 0, stat(b, &sb) == 0 { return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino }
        func absolute(_ p: String) -> String {
            let full = p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
            return (full as NSString).standardizingPath
        }
        return absolute(a) == absolute(b)
    }

    /// Set once a write failed: later writes are dropped.
    private let failed = Mutex(false)

    /// Whether a write has failed (the disk is full, the reader of stdout has gone).
    var hasFailed: Bool { failed.withLock { $0 } }

    /// Appends `data`. False when it could not be written (the disk is full, the reader of
    /// stdout has gone), now or before.
    @discardableResult
    func write(_ data: Data) -> Bool {
        if isStdout { return Console.write(data, to: 1) }
        begin()
        if failed.withLock({ $0 }) { return false }
        let ok = Console.write(data, to: fd, remember: false)
        if !ok { failed.withLock { $0 = true } }
        return ok
    }

    /// Flushes to disk and closes (not stdout).
    func close() {
        guard !isStdout else { return }
        _ = fsync(fd)
        _ = Glibc.close(fd)
    }
}
