import ArgumentParser
import Dispatch
import Foundation
import LoadshearScript
import LoadshearTargets
import NIOCore

/// Lets the target kind be given on the command line by name: `sink`, `echo`, `broadcast`.
extension TargetKind: ExpressibleByArgument {}

/// `loadshear target sink|echo|broadcast`: a built-in loopback server to load.
package struct TargetCommand: AsyncParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "target",
        abstract: "Run a built-in target server on loopback (sink, echo or broadcast).",
        discussion: """
            sink counts and discards; echo sends back what it gets; broadcast sends framed heartbeat \
            pings (header bytes 0-3 type 1, bytes 4-7 body length, big-endian) at --rate per connection \
            and counts the frames that come back. Counts are printed at exit (Ctrl-C, or after --duration).
            """
    )

    @Argument(help: "sink, echo or broadcast")
    var kind: TargetKind

    @Option(
        parsing: .unconditional,
        help: "Port on 127.0.0.1 (0 picks a free one; the default is below the ephemeral range, 32768 up).")
    var port: Int = 7555

    @Option(parsing: .unconditional, help: "broadcast: header size in bytes (at least 8).")
    var headerSize: Int = 8

    @Option(parsing: .unconditional, help: "broadcast: body size in bytes.")
    var bodySize: Int = 8

    @Option(
        parsing: .unconditional,
        help: "broadcast: frames per second per connection (0 = as fast as possible, TCP only).")
    var rate: Int = 10

    @Option(parsing: .unconditional, help: "broadcast: frames per connection before it stops sending.")
    var count: Int?

    @Flag(help: "Serve UDP: sink counts datagrams, echo returns each, broadcast pings every peer that sent one.")
    var udp = false

    @Flag(
        help:
            "broadcast (UDP): stamp each peer's pings with a sequence number (4 bytes, big-endian, from 0) at the start of the body, for SEQUENCE = <header-size>:4 \"big\"."
    )
    var sequence = false

    @Option(
        parsing: .unconditional,
        help: "broadcast (UDP): withhold each ping with this probability (0 to below 1): a known loss.")
    var loss: Double?

    @Option(
        parsing: .unconditional,
        help:
            "broadcast (UDP): send a ping after the next one with this probability (0 to below 1): a known reordering.")
    var reorder: Double?

    @Option(
        parsing: .unconditional,
        help: "echo (TCP): send each read back after this delay, such as 1ms: a server with a known service time.")
    var delay: String?

    @Option(parsing: .unconditional, help: "Stop after this many seconds (default: run until Ctrl-C).")
    var duration: Double?

    @Flag(
        help:
            "Serve TCP over TLS with a self-signed certificate made at start (for localhost and 127.0.0.1); its SHA-256 fingerprint is printed."
    )
    var tls = false

    @Option(
        name: .customLong("write-ca"),
        help: "With --tls: write the certificate (PEM) to this file, for a script's TLS { CA = \"…\" }.")
    var writeCA: String?

    package init() {}

    /// The largest header and body the targets build (a UDP ping must also fit one
    /// datagram, ``PlanBuilder/maxUDPPayload``).
    static let maxHeaderSize = 65_536
    static let maxBodySize = 16 << 20

    /// Rejects a port outside 0...65535, a header under 8 bytes or over 64 KiB, a negative
    /// body size or rate, a body over 16 MiB and a UDP ping past one datagram.
    package func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard headerSize >= 8 else { throw ValidationError("--header-size must be at least 8") }
        guard bodySize >= 0 else { throw ValidationError("--body-size cannot be negative") }
        guard rate >= 0 else { throw ValidationError("--rate cannot be negative") }
        // The frame is built once, whole: a size past these is a typo, not a test (the length
        // field is 4 bytes; a UDP ping must fit one datagram).
        guard headerSize <= Self.maxHeaderSize else {
            throw ValidationError("--header-size must be at most \(Self.maxHeaderSize), got \(headerSize)")
        }
        guard bodySize <= Self.maxBodySize else {
            throw ValidationError("--body-size must be at most \(Self.maxBodySize) (16 MiB), got \(bodySize)")
        }
        if udp, kind == .broadcast, headerSize + bodySize > PlanBuilder.maxUDPPayload {
            throw ValidationError(
                "--header-size + --body-size must fit one UDP datagram (at most \(PlanBuilder.maxUDPPayload) bytes), got \(headerSize + bodySize)"
            )
        }
        if let count, count < 0 { throw ValidationError("--count cannot be negative") }
        if udp, kind == .broadcast, rate == 0 {
            throw ValidationError("--rate 0 (as fast as possible) is for TCP broadcast; a UDP broadcast needs a rate")
        }
        if let duration, !(duration >= 0) { throw ValidationError("--duration must be a number of seconds, 0 or more") }
        if sequence || loss != nil || reorder != nil {
            guard udp, kind == .broadcast else {
                throw ValidationError(
                    "--sequence, --loss and --reorder apply to the UDP broadcast target (broadcast --udp)")
            }
        }
        for (name, p) in [("--loss", loss), ("--reorder", reorder)] {
            if let p, !(0..<1).contains(p) {
                throw ValidationError("\(name) must be a probability from 0 to below 1, got \(p)")
            }
        }
        if sequence, bodySize < 4 {
            throw ValidationError("--sequence needs --body-size of at least 4 (the number's bytes)")
        }
        if kind != .broadcast, headerSize != 8 || bodySize != 8 || rate != 10 || count != nil {
            throw ValidationError("--header-size, --body-size, --rate and --count apply to the broadcast target")
        }
        if tls, udp { throw ValidationError("--tls serves TCP; UDP (DTLS) is not supported") }
        if writeCA != nil, !tls { throw ValidationError("--write-ca needs --tls") }
        if let delay {
            guard case .success = DurationLiteral.parse(delay) else {
                throw ValidationError("--delay must be a duration such as 1ms or 250us, got '\(delay)'")
            }
            guard kind == .echo, !udp else { throw ValidationError("--delay applies to the TCP echo target only") }
        }
    }

    /// Starts the target on 127.0.0.1 and prints its port, serves until a stop signal or
    /// `--duration` has passed, then stops it (letting TCP clients finish for up to 2 s) and
    /// prints the counts. Exits 1 when it cannot listen.
    package func run() async throws {
        var options = TargetOptions(kind: kind)
        options.port = port
        options.headerSize = headerSize
        options.bodySize = bodySize
        options.rate = rate
        options.count = count
        options.udp = udp
        options.sequence = sequence
        options.loss = loss ?? 0
        options.reorder = reorder ?? 0
        if udp, kind == .broadcast, count != nil {
            options.onStreamDone = { Console.out("loadshear target: \($0)\n") }
        }
        if let delay, case .success(let ns) = DurationLiteral.parse(delay) { options.delayNanoseconds = ns }
        if tls {
            do {
                options.tls = try TargetTLS.selfSigned()
            } catch {
                Console.error("loadshear target: error: cannot set up TLS: \(error)\n")
                throw ExitCode.runtimeFailure
            }
            if let writeCA, let pem = options.tls?.certificatePEM {
                // As a report file is written: the system's reason in one line when it cannot be.
                do {
                    let file = try ReportFile.open(writeCA, what: "the certificate")
                    defer { file.close() }
                    guard file.write(Data(pem.utf8)) else {
                        Console.error("loadshear target: error: could not write the certificate to \(writeCA)\n")
                        throw ExitCode.runtimeFailure
                    }
                } catch let error as ReportFile.OpenError {
                    Console.error("loadshear target: error: \(error)\n")
                    throw ExitCode.runtimeFailure
                }
            }
        }
        let server: TargetServer
        do {
            server = try await TargetServer.start(options)
        } catch let e as IOError where e.errnoCode == EADDRINUSE {
            Console.error("loadshear target: error: port \(port) on 127.0.0.1 is in use; try --port 0 for a free one\n")
            throw ExitCode.runtimeFailure
        } catch let e as IOError where e.errnoCode == EACCES {
            Console.error(
                "loadshear target: error: not allowed to listen on port \(port) (ports below 1024 need privileges); try --port 0\n"
            )
            throw ExitCode.runtimeFailure
        } catch {
            Console.error("loadshear target: error: cannot listen on 127.0.0.1:\(port): \(error)\n")
            throw ExitCode.runtimeFailure
        }
        Console.out(
            "loadshear target \(kind.rawValue)\(udp ? " (UDP)" : tls ? " (TLS)" : "") listening on 127.0.0.1:\(server.port)\n"
        )
        if let identity = options.tls {
            Console.out("loadshear target: TLS certificate SHA-256 fingerprint \(identity.fingerprint)\n")
            if let writeCA {
                Console.out("loadshear target: certificate written to \(writeCA) (use it as TLS { CA = … })\n")
            }
        }
        await StopSignals.wait(timeout: duration)
        await server.stop()
        let c = server.counts
        if udp {
            Console.out(
                "loadshear target \(kind.rawValue) (UDP): datagrams received \(c.framesReceived), bytes read \(c.bytesRead), datagrams sent \(c.framesSent), bytes written \(c.bytesWritten), peers \(c.connections)"
                    + (c.kernelDrops.map {
                        ", dropped by the kernel (receive queue full) \($0)"
                            + ($0 > 0 ? " (a drop is one datagram, or up to 64 a segmenting sender sent as one)" : "")
                    } ?? "")
                    + (loss != nil || reorder != nil
                        ? ", withheld (--loss) \(c.withheld), swapped (--reorder) \(c.swapped)" : "")
                    + "\n")
        } else {
            Console.out("loadshear target \(kind.rawValue): \(c)\n")
        }
    }
}
