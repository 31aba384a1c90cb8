import Foundation
import LoadshearTestSupport
import Testing
import WAT

@Suite struct CLITests {
    /// Every example plans cleanly, and names the target to start.
    @Test func everyExamplePlans() async throws {
        let dir = BinaryRunner.repositoryRoot.appendingPathComponent("examples")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".ldsh") }
        #expect(names.count >= 6)
        for name in names {
            let r = try await BinaryRunner.run(
                ["examples/" + name, "--dry-run"], directory: BinaryRunner.repositoryRoot)
            #expect(r.status == 0, "\(name): \(r.stderr)")
            let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
            #expect(text.contains("loadshear target"), "\(name) says which target to start")
        }
    }

    @Test func dryRunPrintsThePlanAndExitsZero() async throws {
        // A relative path, from the repository root.
        let r = try await BinaryRunner.run(
            ["examples/template.ldsh", "--dry-run"], directory: BinaryRunner.repositoryRoot)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("shard 1  sessions 50:100 (50-99, 50 sessions)"))
        #expect(r.stdout.contains("t=2.650s  DISCONNECT"))
        #expect(r.stdout.contains("hello  11 bytes  packets/hello.bin  [68 65 6c 6c 6f"))
        #expect(r.stdout.contains("handler       NOP"))
    }

    @Test func shortDryRunFlagWorksFromAnotherDirectory() async throws {
        let script = BinaryRunner.repositoryRoot.appendingPathComponent("examples/flood.ldsh").path
        let r = try await BinaryRunner.run([script, "-d"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("kib    1024 bytes") || r.stdout.contains("kib  1024 bytes"))
    }

    @Test func badScriptExitsTwoWithLocatedDiagnostics() async throws {
        let ws = Workspace()
        let path = ws.path("bad.ldsh")
        try """
        SETTINGS b {
            SESSION = "TCP"
            PORT = 70000
            ENDPOINTS { 127.0.0.1 }
        }
        ORCHESTRATOR b {
            CREATE 2
            CONNECT 0:3
        }
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try await BinaryRunner.run([path, "--dry-run"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("bad.ldsh:3:12: error: PORT must be between 1 and 65535, got 70000"))
        #expect(r.stderr.contains("bad.ldsh:8:13: error: range 0:3 goes past the 2 created sessions"))
        #expect(r.stderr.contains("           ^~~~~"))
        #expect(!r.stderr.contains("\u{1B}["), "no colour without a TTY")
        #expect(r.stdout.isEmpty)
    }

    @Test func missingScriptFileIsExitTwo() async throws {
        let r = try await BinaryRunner.run(["/nonexistent/x.ldsh", "--dry-run"])
        #expect(r.status == 2)
        #expect(
            r.stderr == "loadshear: error: cannot read /nonexistent/x.ldsh: No such file or directory\n",
            "no caret line: \(r.stderr)")
    }

    @Test func usageErrorsExit64() async throws {
        #expect(try await BinaryRunner.run(["--no-such-flag"]).status == 64)
        #expect(try await BinaryRunner.run([]).status == 64)
    }

    @Test func versionAndHelp() async throws {
        let v = try await BinaryRunner.run(["--version"])
        #expect(v.status == 0)
        #expect(v.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0.1.0")
        #expect(try await BinaryRunner.run(["-v"]).stdout.contains("0.1.0"))
        let h = try await BinaryRunner.run(["run", "--help"])
        #expect(h.status == 0)
        for flag in ["--dry-run", "--expand-envs", "--acknowledge", "--quiet", "--json"] {
            #expect(h.stdout.contains(flag), "help lacks \(flag)")
        }
    }

    @Test func expandEnvsFlag() async throws {
        let ws = Workspace()
        let dir = ws.dir
        ws.write("p.bin", [1, 2, 3])
        let path = ws.path("env.ldsh")
        try """
        SETTINGS e {
            SESSION = "TCP"
            PORT = 9
            ENDPOINTS { 127.0.0.1 }
            PACKETS { p : "$PKTDIR/p.bin" }
        }
        ORCHESTRATOR e {
            CREATE 1
            CONNECT 0:1
            SEND 0:1 p COPIES 1
        }
        """.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try await BinaryRunner.run([path, "-d"], environment: ["PKTDIR": dir]).status == 2)
        let r = try await BinaryRunner.run([path, "-d", "-e"], environment: ["PKTDIR": dir])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("3 bytes"))
    }
}

extension CLITests {
    /// A path that is not next to the script but is in the working directory is used, with a
    /// warning (the original resolved paths from the working directory).
    @Test func pathsFallBackToTheWorkingDirectoryWithAWarning() async throws {
        let scripts = Workspace()
        let cwd = Workspace()
        cwd.write("only-here.bin", [1, 2, 3])
        let path = scripts.script(
            """
            SETTINGS w {
                SESSION = "TCP"
                PORT = 9
                ENDPOINTS { 127.0.0.1 }
                PACKETS { p : "only-here.bin" }
            }
            ORCHESTRATOR w {
                CREATE 1
                CONNECT 0:1
                SEND 0:1 p COPIES 1
            }
            """)
        let r = try await BinaryRunner.run([path, "--dry-run"], directory: URL(fileURLWithPath: cwd.dir))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(
            r.stderr.contains("warning: only-here.bin is not next to the script but is in the working directory"),
            "\(r.stderr)")
        #expect(r.stdout.contains("p  3 bytes  only-here.bin"), "\(r.stdout)")
    }

    /// The original's command line: `-s/--script <file>` and `--arena-init-mb <n>`.
    @Test func theOriginalsOptionsAreAccepted() async throws {
        let script = BinaryRunner.repositoryRoot.appendingPathComponent("examples/flood.ldsh").path
        for args in [["-s", script, "--dry-run"], ["--script", script, "-d", "--arena-init-mb", "64"]] {
            let r = try await BinaryRunner.run(args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
            #expect(r.stdout.contains("Loadshear plan:"))
        }
        let help = try await BinaryRunner.run(["run", "--help"])
        #expect(help.stdout.contains("--arena-init-mb"))
        #expect(help.stdout.contains("no effect"))
    }
}

extension CLITests {
    /// `check` speaks like the rest: no Swift debug text, the check's own usage line, the
    /// system's reason for a file it cannot read.
    @Test func checkErrorsReadLikeTheRest() async throws {
        let ws = Workspace()
        let bad = ws.write("bad.wasm", Array("garbage!".utf8))
        let r = try await BinaryRunner.run(["check", bad])
        #expect(r.status == 2)
        #expect(
            r.stderr.contains("error: the handler is not a valid WebAssembly module: magic header not detected"),
            "\(r.stderr)")
        #expect(!r.stderr.contains("Message(text:"), "\(r.stderr)")
        let module = BinaryRunner.repositoryRoot.appendingPathComponent("sdk/examples/c/heartbeat.wasm").path
        let hex = try await BinaryRunner.run(["check", module, "--hex", "zz"])
        #expect(hex.status == 64)
        #expect(hex.stderr.contains("Usage: loadshear check <module>"), "\(hex.stderr)")
        let short = try await BinaryRunner.run(["check", module, "--hex", "0000"])
        #expect(short.status == 64)
        #expect(
            short.stderr.contains("the message is 2 bytes, shorter than the 8-byte header (--header-size)"),
            "\(short.stderr)")
        #expect(!short.stderr.contains("Usage: loadshear <subcommand>"), "\(short.stderr)")
        let truncated = try await BinaryRunner.run(["check", module, "--hex", "000000010000000f", "--iterations", "1"])
        #expect(
            truncated.stderr.contains(
                "note: handle_header says the body is 15 bytes, but the message has 0 after the 8-byte header"),
            "\(truncated.stderr)")
        // A --packet that cannot be read is a usage error, said before any report on the module.
        let missing = try await BinaryRunner.run(["check", module, "--packet", ws.path("nope.bin")])
        #expect(missing.status == 64 && missing.stdout.isEmpty, "\(missing.stdout)")
        #expect(
            missing.stderr.contains("cannot read \(ws.path("nope.bin")): No such file or directory"),
            "\(missing.stderr)")
    }

    /// A big message and its big reply are dumped in part, with the size of the rest: a
    /// module answering with megabytes must not flood the terminal.
    @Test func checkDumpsABigReplyInPart() async throws {
        let ws = Workspace()
        let module = BinaryRunner.repositoryRoot.appendingPathComponent("sdk/examples/c/heartbeat.wasm").path
        // A ping (type 1) with a 10,000-byte body: the heartbeat module answers with all of it.
        let ping: [UInt8] = [0, 0, 0, 1, 0, 0, 0x27, 0x10] + [UInt8](repeating: 0x61, count: 10_000)
        let packet = ws.write("big.bin", ping)
        let r = try await BinaryRunner.run(["check", module, "--packet", packet, "--iterations", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("handle_body -> reply, 10008 bytes"), "\(r.stdout)")
        #expect(
            r.stdout.components(separatedBy: "… 5912 more bytes not shown (10008 in all)").count == 3, "\(r.stdout)")
        #expect(r.stdout.split(separator: "\n").count < 600)
    }

    /// Sizes the targets cannot build are usage errors (exit 64), not a crash or a gigabyte
    /// allocated up front.
    @Test func targetSizesOutOfRangeAreUsageErrors() async throws {
        for (args, message) in [
            (["--body-size", "4294967296"], "--body-size must be at most 16777216 (16 MiB), got 4294967296"),
            (["--header-size", "1000000"], "--header-size must be at most 65536, got 1000000"),
            (["--udp", "--body-size", "70000"], "must fit one UDP datagram (at most 65507 bytes), got 70008"),
        ] {
            let r = try await BinaryRunner.run(["target", "broadcast", "--port", "0", "--duration", "1"] + args)
            #expect(r.status == 64, "\(args): \(r.stderr)")
            #expect(r.stderr.contains(message), "\(r.stderr)")
        }
    }

    /// A module the default memory cap refuses (its initial memory is above 64 MiB) is a
    /// clear error with exit 2, as the run would refuse it; `--memory` raises the cap, as
    /// HANDLER_MEMORY does in a script.
    @Test func checkAppliesTheMemoryCapAsARunDoes() async throws {
        let ws = Workspace()
        let module = try wat2wasm(
            """
            (module (memory (export "memory") 1100)
              (global $top (mut i32) (i32.const 1024))
              (func $alloc (export "alloc") (param i32) (result i32) global.get $top global.get $top local.get 0 i32.add global.set $top)
              (func (export "dealloc") (param i32 i32) i32.const 1024 global.set $top)
              (func (export "handle_body") (param $p i32) (param $n i32) (result i64) i64.const 0))
            """)
        let path = ws.write("big.wasm", module)
        let refused = try await BinaryRunner.run(["check", path, "--iterations", "1"])
        #expect(refused.status == 2, "\(refused.stdout)\n\(refused.stderr)")
        #expect(refused.stderr.contains("the memory cap is 64 MiB; --memory sets it"), "\(refused.stderr)")
        let raised = try await BinaryRunner.run(["check", path, "--iterations", "1", "--memory", "128MiB"])
        #expect(raised.status == 0, "\(raised.stdout)\n\(raised.stderr)")
        let bad = try await BinaryRunner.run(["check", path, "--memory", "8GiB"])
        #expect(bad.status == 64, "\(bad.stderr)")
    }

    /// A busy port is explained, with the way out.
    @Test func targetOnABusyPortSaysSo() async throws {
        // The first holds the port for the whole test (a loaded machine once kept this test
        // waiting past a 30 s duration, and the second then got the port and ran on).
        let first = try LiveProcess(["target", "sink", "--port", "0", "--duration", "600"])
        defer { first.stop() }
        let line = await first.stdout(contains: "listening on 127.0.0.1:")
        #expect(line)
        let port = try #require(first.stdout.firstMatch(of: /127\.0\.0\.1:(\d+)/).map { String($0.1) })
        let r = try await BinaryRunner.run(["target", "sink", "--port", port, "--duration", "10"])
        #expect(r.status == 1, "\(r.stdout)")
        #expect(r.stderr.contains("port \(port) on 127.0.0.1 is in use; try --port 0"), "\(r.stderr)")
    }

    /// `check` and `--dry-run` say which path a module takes; `check` runs either.
    @Test func checkAndDryRunNameTheHandlerPath() async throws {
        let ws = Workspace()
        let sdk = BinaryRunner.repositoryRoot.appendingPathComponent("sdk/examples/c")
        for (file, path) in [("heartbeat.wasm", "original"), ("heartbeat-fast.wasm", "fast")] {
            let module = sdk.appendingPathComponent(file).path
            let r = try await BinaryRunner.run(["check", module, "--iterations", "10"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("path     \(path) ("), "\(r.stdout)")
            #expect(
                r.stdout.contains(
                    path == "fast" ? "handle_message -> reply, 23 bytes" : "handle_body -> reply, 23 bytes"))
            #expect(r.stdout.contains(path == "fast" ? "body_length(8 bytes) -> 15" : "handle_header(8 bytes) -> 15"))
            ws.write(file, Array(try Data(contentsOf: URL(fileURLWithPath: module))))
            let script = ws.script(
                """
                SETTINGS s {
                    SESSION = "TCP"
                    PORT = 9
                    READ = "true"
                    HEADERSIZE = 8
                    BODYMAX = 64
                    HANDLER = "\(file)"
                    ENDPOINTS { 127.0.0.1 }
                }
                ORCHESTRATOR s {
                    CREATE 1 OFFSET 0ms
                    CONNECT 0:1 OFFSET 1ms
                    DISCONNECT 0:1 OFFSET 1s
                }
                """, name: "\(path).ldsh")
            let dry = try await BinaryRunner.run([script, "--dry-run"])
            #expect(dry.status == 0, "\(dry.stderr)")
            #expect(dry.stdout.contains("handler path  \(path) ("), "\(dry.stdout)")
            #expect(
                dry.stdout.contains(path == "fast" ? "body_length 1 more per frame" : "handle_header 3 more per frame"))
            // With HEADER_LENGTH the module reads no headers: no header call is counted.
            let fixed = ws.script(
                try String(contentsOfFile: script, encoding: .utf8).replacingOccurrences(
                    of: "BODYMAX = 64", with: "BODYMAX = 64\n    HEADER_LENGTH = 4:4 \"big\""),
                name: "\(path)-hl.ldsh")
            let hl = try await BinaryRunner.run([fixed, "--dry-run"])
            #expect(hl.status == 0 && !hl.stdout.contains("more per frame"), "\(hl.stdout)")
        }
    }
}
