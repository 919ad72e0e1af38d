import ArgumentParser
import Foundation
import NIOCore
import TrellisTopology

/// `--svg FILE` and `--png FILE` of `trellis up` and `trellis sim`: pictures of the final
/// members graph.
struct PictureOptions: ParsableArguments {
    @Option(help: "Write the final members graph to this file as SVG (drawn by trellis, no Graphviz needed).")
    var svg: String?

    @Option(help: "Write the final members graph to this file as PNG with Graphviz `dot`; skipped, with a message, when `dot` is not on PATH.")
    var png: String?

    /// Writes the pictures asked for; a file that cannot be written exits with status 2.
    func write(_ nodes: [UpReport.NodeReport], of topology: Topology) throws {
        do throws(PictureError) {
            if let svg { try MembersGraphFiles.writeSVG(MembersGraph(title: topology.name, reports: nodes), to: svg) }
            if let png { try MembersGraphFiles.writePNG(dot: MembersGraphDot.render(nodes, of: topology), to: png) }
        } catch .graphvizMissing {
            FileHandle.standardError.write(Data("skipping --png: \(PictureError.graphvizMissing)\n".utf8))
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}

/// `--live HOST:PORT` and `--live-public` of `trellis up`: the live view of the members graph.
struct LiveViewOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Serve a web page of the members graph, redrawn as nodes join, fail and heal, at HOST:PORT (or PORT, on 127.0.0.1) until the run ends.",
        valueName: "host:port"))
    var live: String?

    @Flag(help: "Allow --live outside loopback. Risk: anyone who can reach the address sees the nodes, their addresses and membership, without a password.")
    var livePublic = false

    func validate() throws {
        guard let live else {
            if livePublic { throw ValidationError("--live-public only makes sense with --live HOST:PORT") }
            return
        }
        let address: LiveViewAddress
        do {
            address = try LiveViewAddress(parsing: live)
        } catch {
            throw ValidationError("--live: \(error)")
        }
        if !address.isLoopback && !livePublic { throw ValidationError("--live: \(PictureError.notLoopback(host: address.host))") }
    }

    /// Starts the live view when `--live` is given and says where on standard error.
    func start(title: String, group: any EventLoopGroup) async throws(PictureError) -> LiveViewServer? {
        guard let live else { return nil }
        let server = try await LiveViewServer.start(at: LiveViewAddress(parsing: live), title: title, allowPublic: livePublic, group: group)
        FileHandle.standardError.write(Data("live view: \(server.url) (stops when the run ends)\n".utf8))
        return server
    }
}
