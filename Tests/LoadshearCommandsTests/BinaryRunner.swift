import Foundation

/// Runs the built `loadshear` binary, as a user would, and collects what it printed.
struct BinaryRunner {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The `loadshear` executable next to the test bundle (SwiftPM builds it with the tests).
    static let executable: URL = {
        var dir = Bundle.main.bundleURL
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("loadshear")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/loadshear")
    }()

    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Runs with a deadline: a hung binary is killed and reported, never waited on forever.
    static func run(_ arguments: [String], environment: [String: String] = [:], stdin: String? = nil,
                    timeout: TimeInterval = 60) throws -> Result {
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        p.currentDirectoryURL = repositoryRoot
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe()
        let err = Pipe()
        let input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input
        let outData = Collector(out.fileHandleForReading)
        let errData = Collector(err.fileHandleForReading)
        let done = DispatchSemaphore(value: 0)
        p.terminationHandler = { _ in done.signal() }
        try p.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try? input.fileHandleForWriting.close()
        if done.wait(timeout: .now() + timeout) == .timedOut {
            p.terminate()
            done.wait()
            return Result(status: -1, stdout: outData.text(), stderr: errData.text() + "\n[killed after \(timeout)s]")
        }
        return Result(status: p.terminationStatus, stdout: outData.text(), stderr: errData.text())
    }

    /// Drains a pipe on a background thread so a chatty child never blocks on a full pipe.
    final class Collector: @unchecked Sendable {
        // Safe: `data` is written by the reader thread only and read after `finished` is signalled.
        private var data = Data()
        private let finished = DispatchSemaphore(value: 0)

        init(_ handle: FileHandle) {
            Thread.detachNewThread { [self] in
                data = handle.readDataToEndOfFile()
                finished.signal()
            }
        }

        func text() -> String {
            finished.wait()
            finished.signal()
            return String(decoding: data, as: UTF8.self)
        }
    }
}
