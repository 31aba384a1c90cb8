import Foundation
import Testing

/// A running `loadshear` whose stderr can be waited on line by line.
final class LiveProcess: @unchecked Sendable {
    // @unchecked: `stderrText` and `stdoutText` are guarded by `condition`.
    let process = Process()
    private let condition = NSCondition()
    private var stderrText = ""
    private var stdoutText = ""

    init(_ arguments: [String]) throws {
        process.executableURL = BinaryRunner.executable
        process.arguments = arguments
        process.currentDirectoryURL = BinaryRunner.repositoryRoot
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        process.environment = env
        let err = Pipe()
        let out = Pipe()
        process.standardError = err
        process.standardOutput = out
        process.standardInput = FileHandle.nullDevice
        for (pipe, isErr) in [(err, true), (out, false)] {
            pipe.fileHandleForReading.readabilityHandler = { [self] h in
                let d = h.availableData
                condition.lock()
                if isErr { stderrText += String(decoding: d, as: UTF8.self) } else { stdoutText += String(decoding: d, as: UTF8.self) }
                condition.broadcast()
                condition.unlock()
                if d.isEmpty { h.readabilityHandler = nil }
            }
        }
        try process.run()
    }

    /// Waits until stderr contains `marker`; false on timeout.
    func waitForStderr(_ marker: String, timeout: TimeInterval = 60) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while !stderrText.contains(marker) {
            if !condition.wait(until: deadline) { return stderrText.contains(marker) }
        }
        return true
    }

    /// Waits for exit; returns the status, or nil on timeout (the process is then killed).
    func waitForExit(timeout: TimeInterval = 60) -> Int32? {
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { [process] in
            process.waitUntilExit()
            done.signal()
        }
        if done.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            return nil
        }
        return process.terminationStatus
    }

    var stdout: String {
        condition.lock()
        defer { condition.unlock() }
        return stdoutText
    }
}

/// A listening socket that never accepts: connects succeed through the backlog, and
/// writes stall once the buffers are full.
final class StallingListener {
    let fd: Int32
    let port: Int

    init() {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                _ = bind(fd, $0, len)
                _ = listen(fd, 64)
                _ = getsockname(fd, $0, &len)
            }
        }
        self.port = Int(UInt16(bigEndian: addr.sin_port))
    }

    deinit { close(fd) }
}

func writeScript(_ text: String, packets: [String: [UInt8]] = [:]) throws -> String {
    let dir = NSTemporaryDirectory() + "ldsh-sig-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    for (name, bytes) in packets { try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name)) }
    try text.write(toFile: dir + "/s.ldsh", atomically: true, encoding: .utf8)
    return dir + "/s.ldsh"
}

@Suite(.serialized) struct SignalTests {
    @Test func firstCtrlCStopsGracefullyWithTheSummary() throws {
        let path = try writeScript("""
            SETTINGS s {
                SESSION = "TCP"
                PORT = 1
                ENDPOINTS { 127.0.0.1 }
            }
            ORCHESTRATOR s {
                CREATE 2 OFFSET 0ms
                CONNECT 0:2 OFFSET 1ms
                DISCONNECT 0:2 OFFSET 1h
            }
            """)
        let p = try LiveProcess([path, "--no-tui"])
        // The per-second line shows the connects have happened (and failed: nothing listens).
        #expect(p.waitForStderr("0 active, 2 failed"))
        kill(p.process.processIdentifier, SIGINT)
        #expect(p.waitForExit() == 0)
        #expect(p.stdout.contains("Summary"))
        #expect(p.stdout.contains("2 attempted, 0 connected, 2 failed"))
    }

    @Test func secondCtrlCExits130AtOnce() throws {
        let listener = StallingListener()
        let path = try writeScript("""
            SETTINGS s {
                SESSION = "TCP"
                PORT = \(listener.port)
                REPEAT = "true"
                ENDPOINTS { 127.0.0.1 }
                PACKETS { p : "p.bin" }
            }
            ORCHESTRATOR s {
                CREATE 2 OFFSET 0ms
                CONNECT 0:2 OFFSET 1ms
                SEND 0:2 p COPIES 1 OFFSET 10ms
                FLOOD 0:2 OFFSET 0ms
                DRAIN 0:2 OFFSET 10ms
                DISCONNECT 0:2 OFFSET 1h
            }
            """, packets: ["p.bin": [UInt8](repeating: 1, count: 65536)])
        let p = try LiveProcess([path, "--no-tui"])
        #expect(p.waitForStderr("loadshear: running"))
        kill(p.process.processIdentifier, SIGINT)
        // The draining sessions cannot finish (nobody reads), so the graceful stop waits.
        #expect(p.waitForStderr("Ctrl-C again to quit at once"))
        kill(p.process.processIdentifier, SIGINT)
        #expect(p.waitForExit() == 130)
        _ = listener
    }

    @Test func jsonIntervalWritesOneLinePerSnapshot() throws {
        let path = try writeScript("""
            SETTINGS s {
                SESSION = "TCP"
                PORT = 1
                ENDPOINTS { 127.0.0.1 }
            }
            ORCHESTRATOR s {
                CREATE 1 OFFSET 0ms
                CONNECT 0:1 OFFSET 1ms
                DISCONNECT 0:1 OFFSET 1200ms
            }
            """)
        let out = (path as NSString).deletingLastPathComponent + "/snap.ndjson"
        let r = try BinaryRunner.run([path, "--quiet", "--json-interval", out])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        #expect(lines.count >= 2)
        for l in lines {
            let o = try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any]
            #expect(o?["elapsedSeconds"] != nil && o?["totals"] != nil && o?["latencyMicroseconds"] != nil)
        }
    }
}
