import Foundation
import LoadshearTestSupport
import Testing
import Yams

/// `loadshear kubernetes`: the manifests are read back as Kubernetes would read them, and
/// checked against the Kubernetes schemas when `kubernetes-validate` (PyPI) is installed.
@Suite struct KubernetesTests {
    /// A text packet, a binary packet in a folder and a WebAssembly handler, next to the script.
    static func workspace() throws -> (Workspace, script: String, files: [String: [UInt8]]) {
        let ws = Workspace()
        try FileManager.default.createDirectory(atPath: ws.path("packets"), withIntermediateDirectories: true)
        let module = try Data(
            contentsOf: BinaryRunner.repositoryRoot.appendingPathComponent("sdk/examples/c/heartbeat.wasm"))
        let files: [String: [UInt8]] = [
            "hello.txt": Array("hello, pods\n".utf8),
            "packets/request.bin": [0x00, 0x00, 0x00, 0x04, 0xFF, 0xFE, 0x0A, 0x00, 0x80],
            "heartbeat.wasm": Array(module),
        ]
        let script = ws.script(
            """
            SETTINGS k8s {
                SESSION = "TCP"
                PORT = 7601
                READ = "true"
                HEADERSIZE = 8
                BODYMAX = 4096
                SHARDS = 2
                HANDLER = "heartbeat.wasm"
                ENDPOINTS { "echo.default.svc.cluster.local" }
                PACKETS {
                    hello : "./hello.txt"
                    request : "packets/request.bin"
                }
            }
            ORCHESTRATOR k8s {
                CREATE 6 OFFSET 0ms
                CONNECT 0:6 OFFSET 10ms
                SEND 0:6 hello COPIES 1
                SEND 0:6 request COPIES 2 COUNTER 0:4 "big":1
                DISCONNECT 0:6 OFFSET 5s
            }
            """, name: "Soak Test.ldsh", files: files)
        return (ws, script, files)
    }

    /// Limits as the pods' runs have them: the longest --start-in (24h) writes a start a pod
    /// that runs at once still takes (it is rounded up to a whole second, so a few hundred ms
    /// past 24 hours); segments must have sessions; a pod's ports are those of its node.
    @Test func startAndSegmentLimitsAreTheRunsOwn() async throws {
        let (ws, script, _) = try Self.workspace()
        defer { withExtendedLifetime(ws) {} }
        // (A loopback script: the dry run below resolves nothing, so it passes on any machine.)
        let local = ws.script(
            """
            SETTINGS l {
                SESSION = "TCP"
                PORT = 7000
                ENDPOINTS { 127.0.0.1 }
            }
            ORCHESTRATOR l {
                CREATE 2
                CONNECT 0:2
            }
            """, name: "local.ldsh")
        let r = try await BinaryRunner.run([
            "kubernetes", local, "--segments", "2", "--image", "x", "--start-in", "24h",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let job = try #require(Array(try Yams.compose_all(yaml: r.stdout)).last)
        let container = try #require(job["spec"]?["template"]?["spec"]?["containers"]?.array().first)
        let args = (container["args"]?.array() ?? []).compactMap { $0.string }
        let start = try #require(args.firstIndex(of: "--start-at").map { args[$0 + 1] })
        let dry = try await BinaryRunner.run([local, "--segment", "0/2", "--start-at", start, "--dry-run"])
        #expect(dry.status == 0, "\(dry.stderr)")
        // More segments than sessions: a plan that cannot be split, as `run --segment` says.
        let many = try await BinaryRunner.run(["kubernetes", script, "--segments", "1000", "--image", "x"])
        #expect(many.status == 2 && many.stderr.contains("some pods would run none"), "\(many.stderr)")
        #expect(!many.stderr.contains("Usage: loadshear <subcommand>"), "\(many.stderr)")
        // A pod with more sessions to one address than Linux's default port range would fail
        // its preflight on such a node: said now, with how many segments fit.
        let big = ws.script(
            """
            SETTINGS big {
                SESSION = "TCP"
                PORT = 7000
                ENDPOINTS { "echo.default.svc.cluster.local" }
            }
            ORCHESTRATOR big {
                CREATE 60000
                CONNECT 0:60000
            }
            """, name: "big.ldsh")
        let two = try await BinaryRunner.run(["kubernetes", big, "--segments", "2", "--image", "x"])
        #expect(two.status == 0, "\(two.stderr)")
        #expect(
            two.stderr.contains("warning: a pod connects up to 30000 sessions")
                && two.stderr.contains("use --segments 3 or more, or SOURCES"), "\(two.stderr)")
        let three = try await BinaryRunner.run(["kubernetes", big, "--segments", "3", "--image", "x"])
        #expect(three.status == 0 && !three.stderr.contains("warning"), "\(three.stderr)")
    }

    @Test func manifestsReadBackAsAnIndexedJobAndItsFiles() async throws {
        let (ws, script, files) = try Self.workspace()
        defer { withExtendedLifetime(ws) {} }
        let before = Date()
        let r = try await BinaryRunner.run([
            "kubernetes", script, "--segments", "3", "--image", "registry.example/loadshear:1", "--start-in", "90s",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let docs = Array(try Yams.compose_all(yaml: r.stdout))
        #expect(docs.map { $0["kind"]?.string } == ["ConfigMap", "Job"])
        let configMap = try #require(docs.first)
        let job = try #require(docs.last)
        #expect(job["metadata"]?["name"]?.string == "soak-test")
        #expect(configMap["metadata"]?["name"]?.string == "soak-test")

        let spec = try #require(job["spec"])
        #expect(spec["completionMode"]?.string == "Indexed")
        #expect(spec["completions"]?.int == 3)
        #expect(spec["parallelism"]?.int == 3)
        #expect(spec["backoffLimit"]?.int == 0)
        let pod = try #require(spec["template"]?["spec"])
        #expect(pod["restartPolicy"]?.string == "Never")
        let container = try #require(pod["containers"]?.array().first)
        #expect(container["image"]?.string == "registry.example/loadshear:1")
        #expect(container["resources"]?["requests"]?["cpu"]?.string == "2", "the script's SHARDS")
        #expect(container["resources"]?["limits"]?["memory"]?.string == "512Mi")
        let env = try #require(container["env"]?.array().first)
        #expect(env["name"]?.string == "JOB_COMPLETION_INDEX")
        #expect(
            env["valueFrom"]?["fieldRef"]?["fieldPath"]?.string
                == "metadata.annotations['batch.kubernetes.io/job-completion-index']")

        let args = (container["args"]?.array() ?? []).compactMap { $0.string }
        #expect(args.first == "/loadshear/Soak Test.ldsh")
        #expect(args.firstIndex(of: "--segment").map { args[$0 + 1] } == "$(JOB_COMPLETION_INDEX)/3", "\(args)")
        for flag in ["--acknowledge", "--quiet"] { #expect(args.contains(flag)) }
        #expect(args.firstIndex(of: "--json").map { args[$0 + 1] } == "-")
        let startText = try #require(args.firstIndex(of: "--start-at").map { args[$0 + 1] })
        let formatter = ISO8601DateFormatter()
        let start = try #require(formatter.date(from: startText), "\(startText) is RFC 3339")
        #expect(startText.hasSuffix("Z"))
        #expect(start > Date(), "in the future")
        #expect(start.timeIntervalSince(before) >= 89 && start.timeIntervalSince(before) <= 120, "\(startText)")

        // Every file is placed at its path relative to the script, with exactly its bytes.
        let volume = try #require(pod["volumes"]?.array().first)
        #expect(volume["configMap"]?["name"]?.string == "soak-test")
        var placed: [String: String] = [:]
        for item in volume["configMap"]?["items"]?.array() ?? [] {
            let key = try #require(item["key"]?.string)
            #expect(!key.contains("/"))
            placed[try #require(item["path"]?.string)] = key
        }
        #expect(Set(placed.keys) == ["Soak Test.ldsh", "hello.txt", "packets/request.bin", "heartbeat.wasm"])
        let mount = try #require(container["volumeMounts"]?.array().first)
        #expect(mount["mountPath"]?.string == "/loadshear")
        #expect(mount["readOnly"]?.bool == true)

        // Six pods for six sessions: one session, so one shard, each.
        let six = try await BinaryRunner.run(["kubernetes", script, "--segments", "6", "--image", "loadshear:test"])
        let sixJob = try #require(Array(try Yams.compose_all(yaml: six.stdout)).last, "\(six.stderr)")
        let sixContainer = sixJob["spec"]?["template"]?["spec"]?["containers"]?.array().first
        #expect(sixContainer?["resources"]?["requests"]?["cpu"]?.string == "1")

        let scriptText = try String(contentsOfFile: script, encoding: .utf8)
        #expect(configMap["data"]?[try #require(placed["Soak Test.ldsh"])]?.string == scriptText)
        #expect(configMap["data"]?[try #require(placed["hello.txt"])]?.string == "hello, pods\n")
        for binary in ["packets/request.bin", "heartbeat.wasm"] {
            let key = try #require(placed[binary])
            #expect(configMap["data"]?[key] == nil, "\(binary) is not text")
            let base64 = try #require(configMap["binaryData"]?[key]?.string, "\(binary) in binaryData")
            #expect(Data(base64Encoded: base64).map { Array($0) } == files[binary], "\(binary)")
        }
    }

    /// A file outside the script's folder cannot be placed in the pods: the command says which
    /// and what to do, and prints nothing on stdout.
    @Test(arguments: ["../outside.bin", "/ABSOLUTE/outside.bin"])
    func filesOutsideTheScriptsFolderAreRefused(_ written: String) async throws {
        let ws = Workspace()
        try FileManager.default.createDirectory(atPath: ws.path("scripts"), withIntermediateDirectories: true)
        ws.write("outside.bin", [1, 2, 3])
        let path = written.replacingOccurrences(of: "/ABSOLUTE", with: ws.dir)
        let script = ws.script(
            """
            SETTINGS outside {
                SESSION = "TCP"
                PORT = 7000
                ENDPOINTS { 127.0.0.1 }
                PACKETS { far : "\(path)" }
            }
            ORCHESTRATOR outside {
                CREATE 2 OFFSET 0ms
                CONNECT 0:2
                SEND 0:2 far COPIES 1
                DISCONNECT 0:2
            }
            """, name: "scripts/outside.ldsh")
        let r = try await BinaryRunner.run(["kubernetes", script, "--segments", "2", "--image", "loadshear:test"])
        #expect(r.status == 2)
        #expect(r.stdout.isEmpty, "\(r.stdout)")
        #expect(r.stderr.contains("error: packet 'far' is at \"\(path)\""), "\(r.stderr)")
        #expect(r.stderr.contains("put the file next to the script"), "\(r.stderr)")
    }

    /// More than a ConfigMap holds is refused before anything is printed.
    @Test func filesLargerThanAConfigMapAreRefused() async throws {
        let ws = Workspace()
        let script = ws.script(
            """
            SETTINGS big {
                SESSION = "TCP"
                PORT = 7000
                ENDPOINTS { 127.0.0.1 }
                PACKETS { big : "big.bin" }
            }
            ORCHESTRATOR big {
                CREATE 2 OFFSET 0ms
                CONNECT 0:2
                SEND 0:2 big COPIES 1
                DISCONNECT 0:2
            }
            """, files: ["big.bin": [UInt8](repeating: 7, count: 1_100_000)])
        let r = try await BinaryRunner.run(["kubernetes", script, "--segments", "2", "--image", "loadshear:test"])
        #expect(r.status == 2)
        #expect(r.stdout.isEmpty)
        #expect(
            r.stderr.contains(
                "more than the 1,048,576 bytes (1 MiB) a ConfigMap holds; the largest: packet 'big' big.bin (1,100,000 bytes)"
            ), "\(r.stderr)")
    }

    /// Usage mistakes are exit 64, each with its reason.
    @Test func usageErrorsExit64() async throws {
        let (ws, script, _) = try Self.workspace()
        defer { withExtendedLifetime(ws) {} }
        let cases: [([String], String)] = [
            (["--segments", "0"], "--segments must be between 1 and 10000"),
            (["--segments", "2", "--start-in", "60"], "--start-in must be a duration"),
            (["--segments", "2", "--name", "Soak_Test"], "only lowercase letters, digits and '-'"),
            (["--segments", "2", "--memory", "lots"], "--memory must be a Kubernetes quantity"),
        ]
        for (flags, message) in cases {
            let r = try await BinaryRunner.run(["kubernetes", script, "--image", "loadshear:test"] + flags)
            #expect(r.status == 64, "\(flags): \(r.stderr)")
            #expect(r.stderr.contains(message), "\(flags): \(r.stderr)")
        }
    }

    /// The manifests pass the Kubernetes schemas (strict: no unknown fields), offline.
    @Test(
        .enabled(
            "kubernetes-validate (PyPI) is not installed: `python3 -m pip install kubernetes-validate` to run this check",
            { await KubernetesTests.validatorInstalled() }))
    func manifestsPassTheKubernetesSchemas() async throws {
        let (ws, script, _) = try Self.workspace()
        let r = try await BinaryRunner.run([
            "kubernetes", script, "--segments", "3", "--image", "registry.example/loadshear:1", "--namespace", "load",
            "--cpu", "1500m", "--memory", "1Gi",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let file = ws.write("job.yaml", Array(r.stdout.utf8))
        let check = try await BinaryRunner.run(
            ["kubernetes-validate", "--strict", file], executable: URL(fileURLWithPath: "/usr/bin/env"))
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("passed for resource configmap/soak-test"), "\(check.stdout)")
        #expect(check.stdout.contains("passed for resource job/soak-test"), "\(check.stdout)")
    }

    /// Whether `kubernetes-validate` runs here (a pyenv shim alone is not enough).
    static func validatorInstalled() async -> Bool {
        guard
            let r = try? await BinaryRunner.run(
                ["kubernetes-validate", "--version"], executable: URL(fileURLWithPath: "/usr/bin/env"), timeout: 60)
        else { return false }
        return r.status == 0
    }
}
