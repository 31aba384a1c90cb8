import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where a report goes (`--json`, `--json-interval`): a file, or stdout for `-`. Opened
/// before the run starts, so a path that cannot be written is reported before anything
/// connects, not after an hour of load.
final class ReportFile: Sendable {
    let path: String
    private let fd: Int32
    var isStdout: Bool { fd == 1 }

    struct OpenError: Error, CustomStringConvertible {
        var description: String
    }

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    /// Opens (creating) `path` for writing; `-` is stdout. The file is emptied when the first
    /// write comes, so a run that fails early leaves an older report as it was.
    static func open(_ path: String, what: String) throws -> ReportFile {
        if path == "-" { return ReportFile(path: path, fd: 1) }
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw OpenError(description: "cannot write \(what) to \(path): \(String(cString: strerror(errno)))")
        }
        return ReportFile(path: path, fd: fd)
    }

    private let started = Mutex(false)

    /// Appends `data` (the first write replaces what the file held). False when it could not
    /// be written (the disk is full, the reader of stdout has gone).
    @discardableResult
    func write(_ data: Data) -> Bool {
        if !isStdout {
            let first = started.withLock { s -> Bool in
                defer { s = true }
                return !s
            }
            if first { _ = ftruncate(fd, 0) }
        }
        return Console.write(data, to: fd)
    }

    /// Flushes to disk and closes (not stdout).
    func close() {
        guard !isStdout else { return }
        _ = fsync(fd)
        _ = Glibc.close(fd)
    }
}
