import Foundation
import LoadshearScript
import LoadshearTestSupport

extension Workspace {
    /// A workspace holding the packet files the script tests name.
    static func withPackets() -> Workspace {
        let ws = Workspace()
        ws.write("hello.bin", Array("hello world".utf8))  // 11 bytes
        ws.write("ping.bin", [0, 0, 0, 1, 0, 0, 0, 8] + Array("PINGPING".utf8))  // 16 bytes
        ws.write("empty.bin", [])
        ws.write("handler.wasm", [0x00, 0x61, 0x73, 0x6D, 1, 0, 0, 0])
        return ws
    }
}

/// Options that never touch the network or the real CPU count.
func testOptions(cpus: Int = 2) -> PlanOptions {
    var o = PlanOptions()
    o.cpuCount = cpus
    o.resolver = { host in
        switch host {
        case "localhost": .success(["127.0.0.1", "::1"])
        case "nowhere.invalid": .failure(ResolveError("Name or service not known"))
        default: .success([host])
        }
    }
    return o
}

/// Builds a plan from script text in a workspace; returns the plan and the rendered diagnostics.
func plan(
    _ text: String, in ws: Workspace = .withPackets(), options: PlanOptions = testOptions()
) -> (Plan?, String, DiagnosticBag) {
    let path = ws.script(text)
    let (p, bag, file) = PlanBuilder.build(path: path, options: options)
    let rendered = DiagnosticRenderer().render(bag, in: file)
        .replacingOccurrences(of: ws.dir + "/", with: "")
    return (p, rendered, bag)
}

/// A minimal valid script with placeholders for extra SETTINGS lines and actions.
func script(
    settings: String = "", actions: String = "    CONNECT 0:10\n    SEND 0:10 p1 COPIES 2",
    create: String = "    CREATE 10 OFFSET 0ms", base: String? = nil
) -> String {
    let fields =
        base ?? """
                SESSION = "TCP"
                PORT = 5000
                ENDPOINTS { 127.0.0.1 }
                PACKETS { p1 : "hello.bin", p2 : "ping.bin" }
            """
    return """
        SETTINGS t {
        \(fields)
        \(settings)
        }
        ORCHESTRATOR t {
        \(create)
        \(actions)
        }

        """
}
