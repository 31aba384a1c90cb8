import ArgumentParser
import Foundation
import LoadshearHandlers
import LoadshearScript

/// `loadshear kubernetes <script> --segments N --image IMAGE`: prints the manifests that run
/// one script on N pods, each its own segment, all starting at the same moment
/// (docs/distributed.md). Nothing is sent to a cluster: pipe the output to `kubectl apply -f -`.
package struct KubernetesCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "kubernetes",
        abstract: "Print a ConfigMap and an Indexed Job that run a script on N pods (docs/distributed.md).",
        discussion: """
            The ConfigMap holds the script, its packets and its handler, placed at their paths relative \
            to the script; the Job's pod i runs 'loadshear <script> --segment i/N --start-at <time> \
            --acknowledge --quiet --json -'. Host names are resolved in the pods, not here. \
            Exit codes: 0 printed, 2 invalid script or files that cannot go in a ConfigMap, 64 usage.
            """
    )

    /// The most pods one run asks for; Kubernetes allows more, but past this a run wants
    /// planning of its own (and the pod names' room for the index is sized by it).
    package static let maxSegments = 10_000
    /// The longest `--name`: a DNS label (63) less room for `-<index>`, which Kubernetes
    /// appends for each pod's host name.
    package static let maxNameLength = 52
    /// The latest `--start-in`: a day. Anything later is more likely a slip of the unit.
    package static let maxStartIn: Nanoseconds = 86_400_000_000_000

    @Argument(help: ArgumentHelp("The Loadshear Script (.ldsh) to run on the pods.", valueName: "script"))
    var script: String

    @Option(help: ArgumentHelp("Pods to run, one segment each (1 to 10000).", valueName: "n"))
    var segments: Int

    @Option(
        help: ArgumentHelp("The container image with loadshear on its PATH (see Containerfile).", valueName: "image"))
    var image: String

    @Option(
        help: ArgumentHelp(
            "How long from now the pods start the timeline together: longer than pulling the image and scheduling take.",
            valueName: "duration"))
    var startIn = "60s"

    @Option(help: ArgumentHelp("The namespace for the Job and the ConfigMap (default: kubectl's).", valueName: "ns"))
    var namespace: String?

    @Option(
        help: ArgumentHelp(
            "Name of the Job and the ConfigMap (default: from the script's file name).", valueName: "name"))
    var name: String?

    @Option(help: ArgumentHelp("CPU request per pod (default: the shards a pod runs).", valueName: "quantity"))
    var cpu: String?

    @Option(help: ArgumentHelp("Memory request and limit per pod.", valueName: "quantity"))
    var memory = "512Mi"

    package init() {}

    /// Checks every flag that does not need the script.
    package func validate() throws {
        guard (1...Self.maxSegments).contains(segments) else {
            throw ValidationError("--segments must be between 1 and \(Self.maxSegments), got \(segments)")
        }
        if image.trimmingCharacters(in: .whitespaces).isEmpty || image.contains(where: \.isWhitespace) {
            throw ValidationError("--image must name an image, such as registry.example.com/loadshear:1.0")
        }
        _ = try startDelay()
        if let namespace, let why = Self.dnsLabelProblem(namespace, maxLength: 63) {
            throw ValidationError("--namespace \"\(namespace)\" is not a valid namespace: \(why)")
        }
        if let name, let why = Self.dnsLabelProblem(name, maxLength: Self.maxNameLength) {
            throw ValidationError("--name \"\(name)\" is not a valid name: \(why)")
        }
        if let cpu, !Self.isPositiveQuantity(cpu) {
            throw ValidationError("--cpu must be a Kubernetes quantity above zero, such as 2 or 1500m, got \"\(cpu)\"")
        }
        if !Self.isPositiveQuantity(memory) {
            throw ValidationError(
                "--memory must be a Kubernetes quantity above zero, such as 512Mi or 2Gi, got \"\(memory)\"")
        }
    }

    /// Plans the script as a run would (exit 2 on errors), bundles its files (exit 2 when they
    /// cannot go in a ConfigMap) and prints the manifests.
    package func run() throws {
        // The pods resolve host names with the cluster's DNS (a Service's name resolves only
        // there) and bind their SOURCES there: here a name stands for itself.
        var options = PlanOptions.elsewhere()
        options.inspectFiles()
        let plan = try Planning.plan(script, options: options)
        if segments > plan.sessionCount {
            // As `run --segment` says it: the plan cannot be split so (a ValidationError from
            // run() would print the top-level usage).
            Console.error(
                "loadshear: error: --segments \(segments) is more than the script's \(plan.sessionCount) session\(plan.sessionCount == 1 ? "" : "s"): some pods would run none\n"
            )
            throw ExitCode.invalidScript
        }
        Self.warnAboutPorts(plan: plan, segments: segments)
        let scriptName = (plan.scriptPath as NSString).lastPathComponent
        let scriptBytes: [UInt8]
        switch FileBytes.read(plan.scriptPath) {
        case .success(let bytes): scriptBytes = bytes
        case .failure(let why):
            Console.error("loadshear: error: cannot read \(plan.scriptPath): \(why.reason)\n")
            throw ExitCode.invalidScript
        }
        let files: [BundledFile]
        do {
            files = try KubernetesManifest.bundle(plan: plan, scriptName: scriptName, scriptBytes: scriptBytes)
        } catch let error as BundleError {
            Console.error("loadshear: error: \(error.description)\n")
            throw ExitCode.invalidScript
        }
        let start = Date().timeIntervalSince1970 + Double(try startDelay()) / 1e9
        let manifest = KubernetesManifest(
            name: name ?? Self.defaultName(scriptName: scriptName), namespace: namespace, image: image,
            segments: segments, startAt: Date(timeIntervalSince1970: start.rounded(.up)),
            cpu: cpu ?? String(Self.shardsPerPod(plan: plan, segments: segments)), memory: memory,
            scriptName: scriptName, files: files)
        let hosts = plan.endpoints.map(\.host).filter { !ResponsibleUse.isLoopback($0) && $0 != "localhost" }
        if !hosts.isEmpty {
            Console.error(
                "loadshear: note: the pods run with --acknowledge and will load \(hosts.joined(separator: ", ")) without asking; only load systems you own or are authorised to test\n"
            )
        }
        Console.out(try manifest.yaml())
    }

    /// Linux's default `ip_local_port_range`: what a node most likely has.
    static let defaultEphemeralPorts = 32768...60999

    /// A pod's segment holds at most the node's ephemeral ports per source and destination:
    /// past Linux's default range, every pod would fail its preflight (exit 2) once started.
    /// Said now, with the way out. (Segment 0 has the largest block.)
    static func warnAboutPorts(plan: Plan, segments: Int) {
        let ports = defaultEphemeralPorts
        let limits = Limits(descriptors: .max, hardDescriptors: .max, openNow: 0, ephemeralPorts: ports)
        guard let busiest = plan.segmented(0, of: segments).preflight(limits).busiestPair,
            busiest.sessions > ports.count
        else { return }
        let enough = (segments * busiest.sessions + ports.count - 1) / ports.count
        Console.error(
            "loadshear: warning: a pod connects up to \(busiest.sessions) sessions from \(busiest.source) to \(busiest.destination), more than the \(ports.count) ephemeral ports of Linux's default range (\(ports.lowerBound)–\(ports.upperBound)): on such a node its preflight refuses the run (exit 2); use --segments \(enough) or more, or \(plan.settings.sources.isEmpty ? "SOURCES" : "more SOURCES addresses")\n"
        )
    }

    /// `--start-in` in nanoseconds, between 1 s and a day.
    func startDelay() throws -> Nanoseconds {
        switch DurationLiteral.parse(startIn) {
        case .success(let ns) where ns >= 1_000_000_000 && ns <= Self.maxStartIn:
            return ns
        case .success:
            throw ValidationError("--start-in must be between 1s and 24h, got \(startIn)")
        case .failure:
            throw ValidationError(
                "--start-in must be a duration such as 60s or 2m (units \(DurationLiteral.unitList)), got \"\(startIn)\""
            )
        }
    }

    /// The shards the busiest pod runs: a segment runs no more shards than it has sessions,
    /// and the largest block holds the sessions divided by the segments, rounded up.
    static func shardsPerPod(plan: Plan, segments: Int) -> Int {
        min(plan.shards.count, (plan.sessionCount + segments - 1) / segments)
    }

    /// The script's file name made a DNS label: `Soak Test.ldsh` gives `soak-test`.
    package static func defaultName(scriptName: String) -> String {
        var stem = (scriptName as NSString).deletingPathExtension.lowercased()
        if stem.isEmpty { stem = scriptName.lowercased() }
        var out = ""
        for c in stem.unicodeScalars {
            let keep = ("a"..."z").contains(c) || ("0"..."9").contains(c)
            if keep {
                out.unicodeScalars.append(c)
            } else if !out.isEmpty, !out.hasSuffix("-") {
                out += "-"
            }
        }
        out = String(out.prefix(maxNameLength))
        while out.hasSuffix("-") { out.removeLast() }
        return out.isEmpty ? "loadshear" : out
    }

    /// Why `s` is not a DNS-1123 label of at most `maxLength` characters, or nil.
    static func dnsLabelProblem(_ s: String, maxLength: Int) -> String? {
        if s.isEmpty { return "it is empty" }
        if s.count > maxLength { return "it has \(s.count) characters, at most \(maxLength) are allowed" }
        let allowed = s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
        if !allowed { return "only lowercase letters, digits and '-' are allowed" }
        if s.hasPrefix("-") || s.hasSuffix("-") { return "it must start and end with a letter or a digit" }
        return nil
    }

    /// A Kubernetes quantity (`2`, `1500m`, `0.5`, `512Mi`, `1e3`) above zero.
    static func isPositiveQuantity(_ s: String) -> Bool {
        guard
            let m = s.wholeMatch(of: /([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?/)
        else { return false }
        return m.1.contains { ("1"..."9").contains($0) }
    }
}
