import Foundation
import LoadshearMetrics
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import Synchronization

/// (ext) `--prometheus <host:port>`: the run's figures at `/metrics` in the Prometheus text
/// exposition format, built with swift-prometheus and served over NIO's HTTP/1 codec.
/// Every 500 ms snapshot feeds it: `loadshear_<counter>_total` counters per shard (label
/// `shard`), gauges for what goes up and down, and `loadshear_latency_seconds` histograms
/// per latency kind (label `kind`, power-of-two buckets from 64 µs, as the summary's view).
final class PrometheusEndpoint: Sendable {
    /// Figures that can go down or are maxima: gauges, not `_total` counters. (SEQUENCE's
    /// lost count drops when a late number fills its gap.)
    static let gauges = Set<ShardCounters.Counter>([
        .connectionsActive, .outstanding, .peakOpenSessions, .sequenceLost,
    ]).union(ShardCounters.maxCounters)
    /// Bucket bounds: 64 µs doubling to about 1 s, then 2 s and 5 s.
    static let buckets: [Duration] =
        (0...14).map { .microseconds(64 << $0) } + [.seconds(2), .seconds(5)]

    let registry = PrometheusCollectorRegistry()
    /// Where it listens (the port picked when 0 was asked for).
    let address: String
    private let channel: Channel
    private let group: MultiThreadedEventLoopGroup
    /// How the connections' handlers reach this endpoint (cleared by ``stop()``).
    private let box = Box()
    /// Per shard, the totals already added to the counters; held while a snapshot is fed and
    /// while `/metrics` is rendered.
    private let fed = Mutex<[CounterValues]>([])

    /// The exposition text of the last whole snapshot.
    func render() -> [UInt8] {
        fed.withLock { _ in registry.emitToBuffer() }
    }

    /// `9464`, `:9464` and `host:port`; a bare port is loopback. Nil when it does not parse.
    static func parse(_ text: String) -> (host: String, port: Int)? {
        var host = "127.0.0.1"
        var portText = text
        if let colon = text.lastIndex(of: ":") {
            let h = String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            if !h.isEmpty { host = h }
            portText = String(text[text.index(after: colon)...])
        }
        guard let port = Int(portText), (0...65535).contains(port) else { return nil }
        return (host, port)
    }

    /// Listens on `host:port`, with every family present (at 0) for `shards` shards from the
    /// start, so a scrape before the first snapshot already sees them.
    ///
    /// - Throws: When the address cannot be bound (in use, not local): the caller says so.
    init(host: String, port: Int, shards: Int) async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let render = box
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(MetricsHandler(render: render))
                    }
                }
                .bind(host: host, port: port).get()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        let bound = channel.localAddress?.port ?? port
        address = host.contains(":") ? "[\(host)]:\(bound)" : "\(host):\(bound)"
        update(Snapshot(elapsed: 0, perShard: Array(repeating: CounterValues(), count: shards), previous: nil))
        render.endpoint.withLock { $0 = self }
    }

    /// `loadshear_latency_seconds{kind=…}`, with its HELP line.
    static var latencyDescriptor: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "loadshear", metricName: "latency", unitName: "seconds",
            helpText: "Latency by kind (connect, send, read, response, lag, …), in seconds; docs/metrics.md")
    }

    /// `loadshear_<counter>[_total]{shard=…}`: the report's counter, in snake case, with a
    /// HELP line naming it as the JSON report does.
    static func descriptor(_ counter: ShardCounters.Counter, unit: String) -> MetricNameDescriptor {
        let (name, scale) = exposed(counter)
        return MetricNameDescriptor(
            namespace: "loadshear", metricName: name, unitName: unit,
            helpText:
                "The JSON report's \(counter.name)\(scale == 1 ? "" : " in seconds"), per shard; docs/report-format.md")
    }

    /// The family's name and the factor to its unit: durations the report counts in µs or ns
    /// are in seconds here, as Prometheus names durations.
    static func exposed(_ counter: ShardCounters.Counter) -> (name: String, scale: Double) {
        switch counter {
        case .loopBusyMicroseconds: ("loop_busy_seconds", 1e-6)
        case .sequenceWorstJitterNanoseconds: ("sequence_worst_jitter_seconds", 1e-9)
        default: (snake(counter.name), 1)
        }
    }

    /// Feeds a snapshot: the latency samples of the interval go into the histograms (each
    /// recorded value as many times as it was seen), each shard's counters grow by what they
    /// gained since the last one, gauges take their level.
    func update(_ s: Snapshot) {
        // Under the lock `/metrics` renders with: a scrape sees whole snapshots.
        fed.withLock { fed in
            for kind in LatencySet.Kind.allCases {
                let h = registry.makeDurationHistogram(
                    descriptor: Self.latencyDescriptor, labels: [("kind", kind.rawValue)], buckets: Self.buckets)
                for v in s.latencyIncrement[kind: kind].recordedValues() {
                    for _ in 0..<v.count { h.record(.microseconds(Int64(v.value))) }
                }
            }
            if fed.count < s.perShard.count {
                fed += Array(repeating: CounterValues(), count: s.perShard.count - fed.count)
            }
            for (i, values) in s.perShard.enumerated() {
                let shard = [("shard", String(i))]
                for counter in ShardCounters.Counter.allCases {
                    let v = values[counter]
                    let scale = Self.exposed(counter).scale
                    if Self.gauges.contains(counter) {
                        registry.makeGauge(descriptor: Self.descriptor(counter, unit: ""), labels: shard)
                            .set(Double(v) * scale)
                        continue
                    }
                    let gained = v - fed[i][counter]
                    // Created at 0 even before it moves, so every family is there from the start.
                    let c = registry.makeCounter(descriptor: Self.descriptor(counter, unit: "total"), labels: shard)
                    if gained > 0 {
                        if scale == 1 {
                            c.increment(by: Int64(gained))
                        } else {
                            c.increment(by: Double(gained) * scale)
                        }
                    }
                }
                fed[i] = values
            }
        }
    }

    /// `bytesSent` → `bytes_sent`.
    static func snake(_ name: String) -> String {
        var out = ""
        for c in name {
            if c.isUppercase {
                out += "_" + c.lowercased()
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// The endpoint, for the connections' handlers (set once it is made).
    final class Box: Sendable {
        let endpoint = Mutex<PrometheusEndpoint?>(nil)
    }

    func stop() async {
        box.endpoint.withLock { $0 = nil }
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// Answers `GET /metrics` with the registry's text; anything else is 404. One response per
/// connection (then it closes), as scrapers expect nothing more.
private final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let render: PrometheusEndpoint.Box
    private var path: String?

    init(render: PrometheusEndpoint.Box) {
        self.render = render
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            path = head.method == .GET ? String(head.uri.split(separator: "?").first ?? "") : nil
        case .body:
            break
        case .end:
            let found = path == "/metrics"
            let body = found ? (render.endpoint.withLock { $0 }?.render() ?? []) : Array("try /metrics\n".utf8)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: found ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain")
            headers.add(name: "Content-Length", value: String(body.count))
            headers.add(name: "Connection", value: "close")
            context.write(
                wrapOutboundOut(
                    .head(HTTPResponseHead(version: .http1_1, status: found ? .ok : .notFound, headers: headers))),
                promise: nil)
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
        }
    }
}
