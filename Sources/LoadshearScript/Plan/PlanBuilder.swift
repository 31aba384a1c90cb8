import Foundation

/// Checks a plan's WASM handler module. `LoadshearScript` knows nothing of WebAssembly;
/// the handlers module supplies an inspector so that `--dry-run` catches bad modules.
public protocol HandlerInspector: Sendable {
    func inspect(_ bytes: [UInt8]) -> HandlerInspection
}

/// What an inspector found in a module.
public struct HandlerInspection: Sendable {
    public var exports: [String]
    public var hasHandleHeader: Bool
    /// Contract violations, one sentence each ("export 'alloc' must be (i32) -> i32, found …").
    public var problems: [String]
    /// The size of the module's exported memory when instantiated, when known.
    public var initialMemoryBytes: Int?

    public init(exports: [String], hasHandleHeader: Bool, problems: [String], initialMemoryBytes: Int? = nil) {
        self.exports = exports
        self.hasHandleHeader = hasHandleHeader
        self.problems = problems
        self.initialMemoryBytes = initialMemoryBytes
    }
}

/// What the plan builder needs from the outside world; tests replace any of it.
public struct PlanOptions: Sendable {
    public var expandEnvironment = false
    public var environment: [String: String] = ProcessInfo.processInfo.environment
    /// Default shard count (capped at the session count) when SHARDS is not given.
    public var cpuCount = ProcessInfo.processInfo.activeProcessorCount
    /// Turns a host name into numeric addresses, or says why it cannot.
    public var resolver: @Sendable (String) -> Result<[String], ResolveError> = HostResolver.resolve
    public var handlerInspector: (any HandlerInspector)?

    public init() {}
}

/// Builds the `Plan` from a script: parses, checks every rule of the language, and reads
/// packet files and the handler module. All independent problems are reported.
public enum PlanBuilder {
    public static let defaultOffset: Nanoseconds = 250_000_000
    /// Largest session count a plan accepts; far above what the fd limit allows to run.
    public static let maxSessions = 10_000_000
    public static let maxUDPPayload = 65_507

    /// Returns the plan when there are no errors; diagnostics (errors and warnings) either way.
    public static func build(_ file: SourceFile, options: PlanOptions = PlanOptions()) -> (Plan?, DiagnosticBag) {
        var d = DiagnosticBag()
        let syntax = Parser.parse(file, diagnostics: &d)
        var checker = Checker(file: file, options: options)
        let plan = checker.check(syntax, &d)
        return (d.hasErrors ? nil : plan, d)
    }

    /// Reads a script file; the system's reason when it cannot.
    public static func read(path: String) -> Result<SourceFile, FileBytes.ReadError> {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            return .failure(FileBytes.ReadError(reason: "it is a directory"))
        }
        return FileBytes.read(path).map { SourceFile(path: path, bytes: $0) }
    }

    /// Reads a script file and builds its plan. A file that cannot be read is reported
    /// as a diagnostic at 1:1, like any other problem with the script.
    public static func build(path: String, options: PlanOptions = PlanOptions()) -> (Plan?, DiagnosticBag, SourceFile) {
        switch read(path: path) {
        case .success(let file):
            let (plan, d) = build(file, options: options)
            return (plan, d, file)
        case .failure(let why):
            var d = DiagnosticBag()
            d.error("cannot read the script: \(why.reason)", at: SourceRange(start: 0, end: 0))
            return (nil, d, SourceFile(path: path, bytes: []))
        }
    }
}

/// Why a host did not resolve.
public struct ResolveError: Error, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// getaddrinfo, once per host at plan time; numeric addresses, duplicates removed.
public enum HostResolver {
    @Sendable
    public static func resolve(_ host: String) -> Result<[String], ResolveError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &result)
        guard rc == 0, let first = result else {
            return .failure(ResolveError(String(cString: gai_strerror(rc))))
        }
        defer { freeaddrinfo(first) }
        var out: [String] = []
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let ai = p {
            var buf = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(ai.pointee.ai_addr, ai.pointee.ai_addrlen, &buf, socklen_t(buf.count), nil, 0,
                           NI_NUMERICHOST) == 0 {
                let ip = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !out.contains(ip) { out.append(ip) }
            }
            p = ai.pointee.ai_next
        }
        // IPv4 first: the common case for load targets, and loopback ::1 may be disabled.
        out.sort { !$0.contains(":") && $1.contains(":") }
        return out.isEmpty ? .failure(ResolveError("no addresses")) : .success(out)
    }
}

/// Reads a whole file straight into an array: one allocation the size of the file, no
/// intermediate `Data` (a 100 MB packet costs 100 MB, not twice that while it is read).
public enum FileBytes {
    public struct ReadError: Error, Sendable {
        /// The system's reason, e.g. "Permission denied".
        public var reason: String
    }

    public static func read(_ path: String) -> Result<[UInt8], ReadError> {
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
