import Foundation

/// Reads a whole file straight into an array: one allocation the size of the file, no
/// intermediate `Data` (a 100 MB packet costs 100 MB, not twice that while it is read).
package enum FileBytes {
    /// Why a file could not be read.
    package struct ReadError: Error, Sendable {
        /// The system's reason, e.g. "Permission denied".
        package var reason: String
    }

    /// Reads the whole file at `path`, up to the size `fstat` gave when it was opened: a file
    /// that grows meanwhile is cut at that size, one that shrinks comes back shorter.
    package static func read(_ path: String) -> Result<[UInt8], ReadError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(ReadError(reason: String(cString: strerror(errno)))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .failure(ReadError(reason: String(cString: strerror(errno)))) }
        let size = Int(st.st_size)
        var failure: ReadError?
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = 0
            while count < size {
                let n = Foundation.read(fd, buffer.baseAddress! + count, size - count)
                if n > 0 {
                    count += n
                } else if n < 0, errno == EINTR {
                    continue
                } else {
                    if n < 0 { failure = ReadError(reason: String(cString: strerror(errno))) }
                    break
                }
            }
        }
        if let failure { return .failure(failure) }
        return .success(bytes)
    }
}
