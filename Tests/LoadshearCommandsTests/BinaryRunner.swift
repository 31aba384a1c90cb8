import Foundation
import LoadshearTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `loadshear` binary, as a user would, and collects what it printed.
/// Everything is awaited, never waited on: a test blocks no thread of the cooperative pool.
struct BinaryRunner {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The `loadshear` executable SwiftPM built next to the test bundle.
    static let executable = built("loadshear")

    /// A file SwiftPM built next to the test bundle (an executable, a library).
    static func built(_ name: String) -> URL {
        var dir = Bundle.main.bundleURL
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return repositoryRoot.appendingPathComponent(".build/debug/" + name)
    }

    /// Runs to completion with a deadline: a hung binary is killed and reported. It runs in
    /// `directory` — by default a fresh empty one, so nothing depends on where tests run.
    /// `executable` is `loadshear` unless another tool is checking its output.
    static func run(
        _ arguments: [String], environment: [String: String] = [:], stdin: String? = nil,
        directory: URL? = nil, executable: URL = executable, timeout: TimeInterval = 120
    ) async throws -> Result {
        let p = try LiveProcess(
            arguments, environment: environment, directory: directory, stdin: stdin, executable: executable)
        guard let status = await p.exit(timeout: timeout) else {
            return Result(
                status: -1, stdout: await p.allStdout(),
                stderr: await p.allStderr() + "\n[killed after \(timeout)s; \(p.pipeState)]")
        }
        return Result(status: status, stdout: await p.allStdout(), stderr: await p.allStderr())
    }

    /// Starts `loadshear target <arguments> --port 0 --duration 60` and returns it with the
    /// port it listens on (0 when it did not say within a minute).
    static func target(_ arguments: [String]) async throws -> (LiveProcess, port: Int) {
        let p = try LiveProcess(["target"] + arguments + ["--port", "0", "--duration", "60"])
        _ = await p.stdout(contains: "\n")
        let port = p.stdout.firstMatch(of: /listening on 127\.0\.0\.1:(\d+)/).flatMap { Int($0.1) } ?? 0
        return (p, port)
    }

    /// Runs through `bash -c` (for `ulimit`, pipes into `head`…); `$LOADSHEAR` is the binary.
    static func shell(_ command: String, timeout: TimeInterval = 120) async throws -> Result {
        let p = try LiveProcess(
            ["-c", command], environment: ["LOADSHEAR": executable.path],
            executable: URL(fileURLWithPath: "/bin/bash"))
        guard let status = await p.exit(timeout: timeout) else {
            return Result(
                status: -1, stdout: await p.allStdout(),
                stderr: await p.allStderr() + "\n[killed after \(timeout)s; \(p.pipeState)]")
        }
        return Result(status: status, stdout: await p.allStdout(), stderr: await p.allStderr())
    }
}

/// A running process whose output can be awaited as it arrives.
final class LiveProcess: Sendable {
    struct Output: Sendable {
        var stdout = Data()
        var stderr = Data()
        var stdoutClosed = false
        var stderrClosed = false
        var status: Int32?
        /// Signals to send once stderr holds their marker (see ``signal(_:whenStderrContains:)``).
        var triggers: [(marker: Data, pid: Int32, signal: Int32)] = []

        /// Removes and returns the triggers whose marker stderr now holds.
        mutating func firedTriggers() -> [(pid: Int32, signal: Int32)] {
            let fired = triggers.filter { stderr.range(of: $0.marker) != nil }
            triggers.removeAll { stderr.range(of: $0.marker) != nil }
            return fired.map { ($0.pid, $0.signal) }
        }
    }

    let process: Process
    private let output = Watched(Output())
    /// Kept for the process's lifetime: their descriptors are read by the drain threads.
    private let pipes: [(read: FileHandle, write: FileHandle)]
    /// A workspace of our own when the caller named no directory; removed with the process.
    private let workspace: Workspace?

    var pid: Int32 { process.processIdentifier }

    /// Ends the process with SIGKILL. A child starts with the signal mask of the thread that
    /// spawned it, and the test process's threads block SIGTERM among others (NIO's and the
    /// signal handling under test), so `terminate()` could leave a server that does not
    /// unblock it (Python) running after the test: dozens piled up, one set per `swift test`.
    func stop() {
        if process.isRunning { kill(pid, SIGKILL) }
    }

    init(
        _ arguments: [String], environment: [String: String] = [:], directory: URL? = nil, stdin: String? = nil,
        executable: URL = BinaryRunner.executable
    ) throws {
        let p = Process()
        process = p
        let ws = directory == nil ? Workspace() : nil
        workspace = ws
        p.executableURL = executable
        p.arguments = arguments
        p.currentDirectoryURL = directory ?? URL(fileURLWithPath: ws!.dir)
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        for (k, v) in environment { env[k] = v }
        p.environment = env
        // Pipes made close-on-exec atomically (pipe2): a child spawned meanwhile by another test
        // must not inherit them (it would hold our pipes open and we would never see them end).
        // The child's own 0, 1, 2 are dup2'd copies, without the flag.
        let out = try Self.pipe()
        let err = try Self.pipe()
        let input = try Self.pipe()
        pipes = [out, err, input]
        p.standardOutput = out.write
        p.standardError = err.write
        p.standardInput = input.read
        let output = self.output
        // Each pipe is drained by a thread of its own with blocking reads (not the cooperative
        // pool): what arrives is appended as it comes, and the end of the pipe is certain.
        for (pipe, isErr) in [(out, false), (err, true)] {
            // The thread holds the read end until it has seen the end: the descriptor cannot be
            // closed (and its number reused) under it when the process object goes first.
            let handle = pipe.read
            Thread.detachNewThread {
                var buffer = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let n = Glibc.read(handle.fileDescriptor, &buffer, buffer.count)
                    if n < 0, errno == EINTR { continue }
                    let chunk = n > 0 ? Data(buffer[0..<n]) : Data()
                    let fired = output.change { o -> [(pid: Int32, signal: Int32)] in
                        if isErr {
                            if n <= 0 { o.stderrClosed = true } else { o.stderr.append(chunk) }
                            return o.firedTriggers()
                        } else {
                            if n <= 0 { o.stdoutClosed = true } else { o.stdout.append(chunk) }
                            return []
                        }
                    }
                    for f in fired { kill(f.pid, f.signal) }
                    if n <= 0 { return }
                }
            }
        }
        p.terminationHandler = { proc in
            let status = proc.terminationStatus
            output.change { $0.status = status }
        }
        try p.run()
        // The child has its copies; ours would keep the pipes open past its exit.
        try? out.write.close()
        try? err.write.close()
        try? input.read.close()
        if let stdin { input.write.write(Data(stdin.utf8)) }
        try? input.write.close()
    }

    /// A pipe whose both ends are close-on-exec from the start.
    static func pipe() throws -> (read: FileHandle, write: FileHandle) {
        typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
        var fds: [Int32] = [-1, -1]
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pipe2") {
            guard unsafeBitCast(symbol, to: Pipe2.self)(&fds, O_CLOEXEC) == 0 else {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
        } else {
            // No pipe2 (not glibc): the flag a moment later, as before.
            guard Glibc.pipe(&fds) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        }
        return (
            FileHandle(fileDescriptor: fds[0], closeOnDealloc: true),
            FileHandle(fileDescriptor: fds[1], closeOnDealloc: true)
        )
    }

    /// Sends `sig` the moment stderr holds `marker`, from the thread that reads stderr: not
    /// from a test task, which a loaded machine can hold back for seconds.
    func signal(_ sig: Int32, whenStderrContains marker: String) {
        let pid = self.pid
        let fired = output.change { o -> [(pid: Int32, signal: Int32)] in
            o.triggers.append((Data(marker.utf8), pid, sig))
            return o.firedTriggers()
        }
        for f in fired { kill(f.pid, f.signal) }
    }

    /// Waits until stderr contains `marker`; false on timeout.
    func stderr(contains marker: String, timeout: TimeInterval = 60) async -> Bool {
        let m = Data(marker.utf8)
        return await output.wait(timeout: .seconds(timeout)) { $0.stderr.range(of: m) != nil }
    }

    /// Waits until stdout contains `marker`; false on timeout.
    func stdout(contains marker: String, timeout: TimeInterval = 60) async -> Bool {
        let m = Data(marker.utf8)
        return await output.wait(timeout: .seconds(timeout)) { $0.stdout.range(of: m) != nil }
    }

    /// Waits until stdout has at least `n` lines; false on timeout.
    func stdout(lines n: Int, timeout: TimeInterval = 60) async -> Bool {
        await output.wait(timeout: .seconds(timeout)) { o in o.stdout.reduce(0) { $0 + ($1 == 10 ? 1 : 0) } >= n }
    }

    /// Waits for exit and for both pipes to be drained; nil on timeout (then it is killed).
    /// Once the process has exited, its pipes get 10 s more to end: a grandchild that kept
    /// them open (a browser's helper) must not turn a finished run into a hang.
    func exit(timeout: TimeInterval = 60) async -> Int32? {
        let exited = await output.wait(timeout: .seconds(timeout)) { $0.status != nil }
        if !exited {
            stop()
            return nil
        }
        _ = await output.wait(timeout: .seconds(10)) { $0.stdoutClosed && $0.stderrClosed }
        return output.value.status
    }

    /// For a hang's report: whether the pipes had ended when it was killed.
    var pipeState: String {
        let o = output.value
        return "stdout \(o.stdoutClosed ? "ended" : "open"), stderr \(o.stderrClosed ? "ended" : "open")"
    }

    func allStdout() async -> String { String(decoding: output.value.stdout, as: UTF8.self) }
    func allStderr() async -> String { String(decoding: output.value.stderr, as: UTF8.self) }
    var stdout: String { String(decoding: output.value.stdout, as: UTF8.self) }
    var stderrText: String { String(decoding: output.value.stderr, as: UTF8.self) }
}
