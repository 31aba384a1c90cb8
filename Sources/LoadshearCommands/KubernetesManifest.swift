import Foundation
import LoadshearScript
import Yams

/// The manifests `loadshear kubernetes` prints: a ConfigMap with the script and every file it
/// names, and an Indexed Job whose pod `i` runs segment `i` of `N`.
///
/// Text generation only: nothing here talks to a cluster. The documents are built as Yams
/// nodes, not concatenated text, so that any script text or file name comes out as valid YAML
/// that reads back to exactly the same string.
package struct KubernetesManifest {
    /// Where the ConfigMap is mounted in the pods; the script sits at its top.
    package static let mountPath = "/loadshear"
    /// The most a ConfigMap holds: the API server refuses more data (keys not counted).
    package static let configMapLimit = 1_048_576
    /// How long a finished Job and its pods (with their logs) are kept: a day.
    package static let ttlSecondsAfterFinished = 86_400
    /// The label every object carries, and the one that tells runs apart.
    package static let appLabel = ("app.kubernetes.io/name", "loadshear")
    package static let runLabel = "loadshear/run"

    /// The Job's and the ConfigMap's name (a DNS-1123 label).
    package var name: String
    /// The namespace to create them in; nil leaves it to `kubectl` (its current context).
    package var namespace: String?
    /// The container image holding `loadshear` on its PATH.
    package var image: String
    /// Pods, one per segment.
    package var segments: Int
    /// When every pod starts the timeline (`--start-at`).
    package var startAt: Date
    /// Each pod's CPU request, a Kubernetes quantity.
    package var cpu: String
    /// Each pod's memory request and limit, a Kubernetes quantity.
    package var memory: String
    /// The script's file name; it is placed at the top of the mount.
    package var scriptName: String
    /// The script and the files it names, each with its ConfigMap key and place in the mount.
    package var files: [BundledFile]

    /// `--start-at` as the pods are given it: RFC 3339 in UTC, whole seconds.
    package var startAtText: String { KubernetesManifest.rfc3339(startAt) }

    /// The arguments each pod's `loadshear` runs with; `$(JOB_COMPLETION_INDEX)` is expanded by
    /// the kubelet from the container's environment.
    package var arguments: [String] {
        [
            KubernetesManifest.mountPath + "/" + scriptName,
            "--segment", "$(JOB_COMPLETION_INDEX)/\(segments)",
            "--start-at", startAtText,
            "--acknowledge", "--quiet", "--json", "-",
        ]
    }

    /// The two documents, ConfigMap first (the Job's pods mount it), each starting with `---`.
    package func yaml() throws -> String {
        try Yams.serialize(
            nodes: [configMap(), job()], width: -1, allowUnicode: true, explicitStart: true,
            newLineScalarStyle: .literal)
    }

    /// `2026-11-30T12:00:00Z`.
    package static func rfc3339(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: date)
    }

    // MARK: documents

    /// Name, namespace, labels, and the annotations given.
    private func metadata(annotations: [(Node, Node)] = []) -> Node {
        var m: [(Node, Node)] = [("name", Self.text(name))]
        if let namespace { m.append(("namespace", Self.text(namespace))) }
        m.append(("labels", labels))
        if !annotations.isEmpty { m.append(("annotations", Node(annotations))) }
        return Node(m)
    }

    private var labels: Node {
        Node([(Node(Self.appLabel.0), Node(Self.appLabel.1)), (Node(Self.runLabel), Self.text(name))])
    }

    private func configMap() -> Node {
        var doc: [(Node, Node)] = [("apiVersion", "v1"), ("kind", "ConfigMap"), ("metadata", metadata())]
        let text = files.filter(\.isText)
        let binary = files.filter { !$0.isText }
        if !text.isEmpty {
            doc.append(
                ("data", Node(text.map { (Self.text($0.key), Self.text(String(decoding: $0.bytes, as: UTF8.self))) })))
        }
        if !binary.isEmpty {
            doc.append(
                (
                    "binaryData",
                    Node(binary.map { (Self.text($0.key), Self.text(Data($0.bytes).base64EncodedString())) })
                ))
        }
        return Node(doc)
    }

    private func job() -> Node {
        let jobMetadata = metadata(annotations: [
            ("loadshear/script", Self.text(scriptName)), ("loadshear/start-at", Self.text(startAtText)),
        ])
        let index: Node = [
            "name": "JOB_COMPLETION_INDEX",
            "valueFrom": [
                "fieldRef": ["fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"]
            ],
        ]
        let container: Node = [
            "name": "loadshear",
            "image": Self.text(image),
            "command": ["loadshear"],
            "args": Node(arguments.map(Self.text), .implicit),
            "env": [index],
            "resources": [
                "requests": ["cpu": Self.text(cpu), "memory": Self.text(memory)],
                "limits": ["memory": Self.text(memory)],
            ],
            "volumeMounts": [
                ["name": "files", "mountPath": Node(Self.mountPath), "readOnly": Node("true", Tag(.bool))]
            ],
        ]
        let items = Node(files.map { f -> Node in ["key": Self.text(f.key), "path": Self.text(f.path)] }, .implicit)
        return [
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": jobMetadata,
            "spec": [
                "completionMode": "Indexed",
                "completions": Self.integer(segments),
                "parallelism": Self.integer(segments),
                "backoffLimit": 0,
                "ttlSecondsAfterFinished": Self.integer(Self.ttlSecondsAfterFinished),
                "template": [
                    "metadata": ["labels": labels],
                    "spec": [
                        "restartPolicy": "Never",
                        "containers": [container],
                        "volumes": [["name": "files", "configMap": ["name": Self.text(name), "items": items]]],
                    ],
                ],
            ],
        ]
    }

    /// A string as a scalar that reads back as that string. Plain when that is certain, also
    /// for readers that follow YAML 1.1 (Kubernetes' own reads `yes`, `on` or `n` as booleans);
    /// literal (`|`) for multi-line text, which the emitter turns double-quoted when a literal
    /// block cannot hold it exactly; double-quoted otherwise.
    static func text(_ s: String) -> Node {
        let plain =
            s.first.map { $0.isASCII && $0.isLetter } == true
            && s.utf8.allSatisfy { c in
                (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39)
                    || c == UInt8(ascii: "-") || c == UInt8(ascii: ".") || c == UInt8(ascii: "_")
                    || c == UInt8(ascii: "/")
            }
            && !yaml11Words.contains(s.lowercased())
        if plain { return Node(s, Tag(.str), .plain) }
        return Node(s, Tag(.str), s.contains("\n") ? .literal : .doubleQuoted)
    }

    /// An integer scalar.
    static func integer(_ n: Int) -> Node { Node(String(n), Tag(.int)) }

    /// Words YAML 1.1 reads as booleans or null.
    private static let yaml11Words: Set<String> = ["y", "n", "yes", "no", "on", "off", "true", "false", "null"]
}

/// A file the pods need, as the ConfigMap holds it and the volume places it.
package struct BundledFile: Sendable, Equatable {
    /// What it is, for messages: `the script`, `packet 'hello'`, `the handler`.
    package var what: String
    /// The ConfigMap key: `[-._a-zA-Z0-9]` only, so no `/`.
    package var key: String
    /// Where the volume puts it, relative to the mount (and so to the script).
    package var path: String
    package var bytes: [UInt8]

    /// Whether it goes in `data` as text: valid UTF-8 without NUL or other control
    /// characters than tab, line feed and carriage return. Anything else goes in `binaryData`.
    package var isText: Bool {
        guard String(validating: bytes, as: UTF8.self) != nil else { return false }
        return !bytes.contains { ($0 < 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D) || $0 == 0x7F }
    }
}

/// Why the script's files cannot go in a ConfigMap; exit code 2, like a script error.
package struct BundleError: Error, CustomStringConvertible {
    package var description: String
}

extension KubernetesManifest {
    /// The script and every file it names (packets in script order, the handler module, the
    /// TLS block's files),
    /// each placed at its path relative to the script. Files named twice are placed once.
    ///
    /// - Throws: ``BundleError`` for a path that cannot be placed below the script (absolute,
    ///   `~/`, or going up with `..`), for two different files at one place, and when they
    ///   take more than a ConfigMap holds.
    package static func bundle(plan: Plan, scriptName: String, scriptBytes: [UInt8]) throws -> [BundledFile] {
        var files = [
            BundledFile(what: "the script", key: "script-" + keySafe(scriptName), path: scriptName, bytes: scriptBytes)
        ]
        var named: [(what: String, written: String, bytes: [UInt8], key: String)] = []
        for (i, p) in plan.packets.enumerated() {
            named.append(("packet '\(p.id)'", p.path, p.bytes, "packet-\(i)-"))
        }
        if case .wasm(let h) = plan.handler {
            named.append(("the handler", h.path, h.bytes, "handler-"))
        }
        // (ext) TLS: the CA, client certificate and key files (a ConfigMap is not a Secret:
        // use a throw-away client key for load tests).
        if let tls = plan.settings.tls {
            let files = [("CA", tls.ca), ("CERT", tls.certificate), ("KEY", tls.key)]
            for (field, file) in files {
                if let file { named.append(("the TLS \(field)", file.path, file.bytes, "tls-\(field.lowercased())-")) }
            }
        }
        for f in named {
            let path = try placement(of: f.written, what: f.what)
            if let same = files.first(where: { $0.path == path }) {
                guard same.bytes == f.bytes else {
                    throw BundleError(
                        description:
                            "\(f.what) (\(f.written)) and \(same.what) would both be placed at \(path) with different contents; give them different paths"
                    )
                }
                continue
            }
            let base = (path as NSString).lastPathComponent
            files.append(BundledFile(what: f.what, key: f.key + keySafe(base), path: path, bytes: f.bytes))
        }
        let total = files.reduce(0) { $0 + $1.bytes.count }
        if total > configMapLimit {
            let largest = files.sorted { $0.bytes.count > $1.bytes.count }.prefix(3)
                .map { "\($0.what) \($0.path) (\(byteCount($0.bytes.count)))" }.joined(separator: ", ")
            throw BundleError(
                description:
                    "the script and its files take \(byteCount(total)), more than the \(byteCount(configMapLimit)) (1 MiB) a ConfigMap holds; the largest: \(largest). Use smaller packets"
            )
        }
        return files
    }

    /// The path, relative to the script, at which a file named `written` in the script is
    /// found again in the pods: `./a//b.bin` becomes `a/b.bin`.
    static func placement(of written: String, what: String) throws -> String {
        let reason: String?
        let parts = written.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        if written.hasPrefix("/") {
            reason = "the path is absolute"
        } else if written == "~" || written.hasPrefix("~/") {
            reason = "the path is in the home directory"
        } else if parts.contains("..") {
            reason = "the path goes up with '..'"
        } else if parts.isEmpty {
            reason = "the path names no file"
        } else {
            reason = nil
        }
        if let reason {
            throw BundleError(
                description:
                    "\(what) is at \"\(written)\", which cannot be placed next to the script in the pods (\(reason)); put the file next to the script, or in a folder below it, and name it by that relative path"
            )
        }
        return parts.joined(separator: "/")
    }

    /// `name` with every character a ConfigMap key may not hold replaced by `-`, and short
    /// enough (keys hold at most 253 characters).
    static func keySafe(_ name: String) -> String {
        let mapped = name.unicodeScalars.map { c -> Character in
            c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "-" || c == "." || c == "_")
                ? Character(c) : "-"
        }
        return String(mapped.prefix(200))
    }

    /// `812 bytes`, `1,100,000 bytes`: exact, since the limit is.
    static func byteCount(_ n: Int) -> String {
        var digits = String(n)
        var out = ""
        while digits.count > 3 {
            out = "," + digits.suffix(3) + out
            digits.removeLast(3)
        }
        return digits + out + (n == 1 ? " byte" : " bytes")
    }
}
