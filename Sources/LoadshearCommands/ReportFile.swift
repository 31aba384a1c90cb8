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

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    /// Opens (creating, emptying) `path` for writing; `-` is stdout. Emptied now, so what the
    /// file holds afterwards is this run's, even when the run writes nothing to it.
    static func open(_ path: String, what: String) throws -> ReportFile {
        if path == "-" { return ReportFile(path: path, fd: 1) }
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw OpenError(description: "cannot write \(what) to \(path): \(String(cString: strerror(errno)))")
        }
        return ReportFile(path: path, fd: fd)
    }

    /// Set once a write failed: later writes are dropped.
    private let failed = Mutex(false)

    /// Appends `data`. False when it could not be written (the disk is full, the reader of
    /// stdout has gone), now or before.
    @discardableResult
    func write(_ data: Data) -> Bool {
        if isStdout { return Console.write(data, to: 1) }
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
