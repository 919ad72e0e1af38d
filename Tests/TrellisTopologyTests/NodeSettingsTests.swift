import Foundation
import Logging
import TrellisWire
import XCTest

@testable import TrellisTopology

/// `trellis node`'s settings: config file, `TRELLIS_*` variables and flags, resolved with
/// flags > environment > file > defaults, and the errors for each source.
final class NodeSettingsTests: XCTestCase {
    let scratch = try! TopologyScratch()

    /// The layer of `text` read as `node.toml` in the scratch folder (which holds `overlay.lua`).
    func file(_ text: String) throws(TopologyError) -> NodeSettingsLayer {
        try NodeSettingsLayer(configText: text, path: scratch.path("node.toml"))
    }

    func flags(_ texts: [NodeSettingKey: [String]]) throws(NodeSettingsError) -> NodeSettingsLayer {
        try NodeSettingsLayer(texts: texts) { "--\($0.rawValue)" }
    }

    func testEachSettingComesWholeFromTheHighestSourceThatSetsIt() throws {
        let fromFile = try file("""
            name = "file-name"
            listen = "127.0.0.1:7101"
            cluster = "prod"
            cookie = "file-cookie"
            overlay = "overlay.lua"
            failure_timeout = "3s"
            log_level = "info"

            [tags]
            region = "eu"
            zone = "a"
            """)
        let fromEnvironment = try NodeSettingsLayer(environment: [
            "TRELLIS_LISTEN": "127.0.0.1:7201", "TRELLIS_TAGS": "role=seed", "TRELLIS_NAME": "env-name", "HOME": "/root",
        ])
        let fromFlags = try flags([.name: ["flag-name"], .seeds: ["a@127.0.0.1:1", "b@127.0.0.1:2"]])
        let settings = try NodeSettings(resolving: [fromFlags, fromEnvironment, fromFile])
        XCTAssertEqual(settings.name, "flag-name")
        XCTAssertEqual(settings.listen, NodeAddress(host: "127.0.0.1", port: 7201))
        XCTAssertEqual(settings.tags, ["role": "seed"], "a list setting is replaced whole, not merged")
        XCTAssertEqual(settings.seeds.map(\.description), ["a@127.0.0.1:1", "b@127.0.0.1:2"])
        XCTAssertEqual(settings.cluster, "prod")
        XCTAssertEqual(settings.cookie, "file-cookie")
        XCTAssertEqual(settings.overlay, scratch.path("overlay.lua"), "taken from the file's folder")
        XCTAssertEqual(settings.failureTimeoutMs, 3_000)
        XCTAssertEqual(settings.logLevel, .info)
        XCTAssertNil(settings.admin)
    }

    func testUnsetSettingsTakeTheirDefaults() throws {
        let settings = try NodeSettings(resolving: [try flags([.name: ["n1"], .overlay: ["o.lua"], .cookie: ["c"]])])
        XCTAssertEqual(settings.listen.description, "127.0.0.1:0")
        XCTAssertEqual(settings.cluster, "trellis")
        XCTAssertEqual(settings.overlayConfig, .map([:]))
        XCTAssertEqual(settings.failureTimeoutMs, 2_000)
        XCTAssertEqual(settings.logLevel, .warning)
        XCTAssertEqual(settings.seeds, [])
        XCTAssertEqual(settings.actors, [])
        XCTAssertNil(settings.placement)
        XCTAssertFalse(settings.busyWait)
    }

    func testBusyWaitIsOffUnlessTurnedOn() throws {
        let required = try flags([.name: ["n1"], .overlay: [scratch.path("overlay.lua")], .cookie: ["c"]])
        let onInFile = try file("busy_wait = true\n")
        XCTAssertTrue(try NodeSettings(resolving: [required, onInFile]).configuration(logger: Logger(label: "t")).busyWait.isOn)
        XCTAssertFalse(try NodeSettings(resolving: [required]).configuration(logger: Logger(label: "t")).busyWait.isOn)
        let offInEnvironment = try NodeSettingsLayer(environment: ["TRELLIS_BUSY_WAIT": "off"])
        XCTAssertFalse(try NodeSettings(resolving: [required, offInEnvironment, onInFile]).busyWait, "the environment beats the file")
        XCTAssertEqual(try flags([.busyWait: ["on"]]).busyWait, true)
        assertTextError(environment: ["TRELLIS_BUSY_WAIT": "sometimes"], "TRELLIS_BUSY_WAIT: 'sometimes' is neither on nor off")
        assertFileError("busy_wait = \"on\"\n", .wrongType, line: 1, key: "busy_wait", "expected a boolean")
    }

    func testMissingSettingsSayWhereToSetThem() throws {
        XCTAssertThrowsError(try NodeSettings(resolving: [try flags([.overlay: ["o.lua"], .cookie: ["c"]])])) { error in
            let text = "\(error)"
            for fragment in ["name: not set", "--name", "TRELLIS_NAME", "name = \"n1\""] {
                XCTAssertTrue(text.contains(fragment), "\(fragment) missing from: \(text)")
            }
        }
        XCTAssertThrowsError(try NodeSettings(resolving: [try flags([.name: ["n"], .overlay: ["o.lua"]])])) { error in
            XCTAssertTrue("\(error)".contains("TRELLIS_COOKIE"), "\(error)")
        }
        let withAdmin = try flags([.name: ["n"], .overlay: ["o.lua"], .cookie: ["c"], .admin: ["127.0.0.1:7180"]])
        XCTAssertThrowsError(try NodeSettings(resolving: [withAdmin])) { error in
            XCTAssertTrue("\(error)".contains("--admin-token"), "\(error)")
        }
    }

    func testFileErrorsNameTheLineTheKeyAndTheFix() {
        assertFileError("name = \"n1\"\nlistn = \"127.0.0.1:1\"\n", .unknownKey, line: 2, key: "listn", "Did you mean `listen`?")
        assertFileError("failure_timeout = true\n", .wrongType, line: 1, key: "failure_timeout", "got a boolean")
        assertFileError("seeds = \"n1@127.0.0.1:1\"\n", .wrongType, line: 1, key: "seeds", "expected an array")
        assertFileError("name = 7\n", .wrongType, line: 1, key: "name", "expected a string")
        assertFileError("name = \"a b\"\n", .invalidValue, line: 1, key: "name", "not a valid node name")
        assertFileError("\nlisten = \"localhost\"\n", .invalidValue, line: 2, key: "listen", "is not host:port")
        assertFileError("admin = \"::1:7180\"\n", .invalidValue, line: 1, key: "admin", "[::1]:7101")
        assertFileError("seeds = [\"n1@127.0.0.1\"]\n", .invalidValue, line: 1, key: "seeds", "missing ':port'")
        assertFileError("overlay = \"missing.lua\"\n", .missingOverlay, line: 1, key: "overlay", "taken from the folder of node.toml")
        assertFileError("log_level = \"warn\"\n", .invalidValue, line: 1, key: "log_level", "Did you mean warning?")
        assertFileError("failure_timeout = 0\n", .invalidValue, line: 1, key: "failure_timeout", "positive")
        assertFileError("[tags]\nregion = 1\n", .wrongType, line: 2, key: "tags.region", "quoted string")
        assertFileError("name = \n", .syntax, line: 1, key: nil, "TOML syntax")
    }

    func testDiscoveryAndTLSFileErrorsNameTheLineTheKeyAndTheFix() {
        assertFileError(
            "discovery = \"dns:x.example\"\n", .invalidValue, line: 1, key: "discovery", "unknown discovery strategy 'dns'", "Did you mean dns-a?")
        assertFileError("\ndiscovery = \"static:n1\"\n", .invalidValue, line: 2, key: "discovery", "invalid peer id", "static:ID,ID")
        assertFileError("discovery = \"gossip:239.255.73.1\"\n", .invalidValue, line: 1, key: "discovery", "is not gossip:GROUP:PORT")
        assertFileError("dns_server = \"dns.example\"\n", .invalidValue, line: 1, key: "dns_server", "not an IP address", "not its name")
        assertFileError("discovery_interval = 0\n", .invalidValue, line: 1, key: "discovery_interval", "must be positive")
        assertFileError("discovery_interval = \"soon\"\n", .invalidValue, line: 1, key: "discovery_interval", "is not a duration")
        assertFileError(
            "tls_cert = \"certs/missing.pem\"\n", .invalidValue, line: 1, key: "tls_cert", "no file at \(scratch.path("certs/missing.pem"))",
            "taken from the folder of node.toml")
        assertFileError("tls_ca = 1\n", .wrongType, line: 1, key: "tls_ca", "expected a string")
        assertFileError("tls_crt = \"a.pem\"\n", .unknownKey, line: 1, key: "tls_crt", "Did you mean `tls_cert`?")
        assertFileError("dicsovery = \"gossip\"\n", .unknownKey, line: 1, key: "dicsovery", "Did you mean `discovery`?")
    }

    func testAFileAcceptsEverySettingInItsOwnType() throws {
        let layer = try file("""
            name = "n1"
            listen = "[::1]:7101"
            seeds = ["n2@10.0.0.2:7101"]
            cluster = "prod"
            overlay = "overlay.lua"
            actors = ["overlay.lua"]
            placement = "overlay.lua"
            admin = "127.0.0.1:7180"
            admin_token = "t"
            failure_timeout = 1500
            log_level = "debug"

            [overlay_config]
            fanout = 3
            peers = ["a", "b"]
            """)
        XCTAssertEqual(layer.listen?.host, "::1")
        XCTAssertEqual(layer.listen?.description, "[::1]:7101")
        XCTAssertEqual(layer.seeds, [PeerID(name: "n2", host: "10.0.0.2", port: 7101)])
        XCTAssertEqual(layer.actors, [scratch.path("overlay.lua")])
        XCTAssertEqual(layer.overlayConfig, .map(["fanout": .int(3), "peers": .array(["a", "b"])]))
        XCTAssertEqual(layer.failureTimeoutMs, 1_500)
        XCTAssertEqual(layer.logLevel, .debug)
    }

    func testEnvironmentAndFlagErrorsNameTheirSource() {
        assertTextError(environment: ["TRELLIS_LISTEN": "127.0.0.1:99999"], "TRELLIS_LISTEN: '127.0.0.1:99999' is not host:port")
        assertTextError(environment: ["TRELLIS_FAILURE_TIMEOUT": "soon"], "TRELLIS_FAILURE_TIMEOUT: 'soon' is not a positive duration")
        assertTextError(environment: ["TRELLIS_OVERLAY_CONFIG": "[1]"], "TRELLIS_OVERLAY_CONFIG: not valid JSON (not an object)")
        assertTextError(environment: ["TRELLIS_SEEDS": "n1@127.0.0.1:1,nope"], "TRELLIS_SEEDS: invalid peer id 'nope'")
        assertTextError(environment: ["TRELLIS_TAGS": "region"], "TRELLIS_TAGS: tag 'region' is not key=value")
        XCTAssertThrowsError(try flags([.logLevel: ["loud"]])) { error in
            XCTAssertEqual("\(error)", "--log_level: unknown log level 'loud'. Use one of trace, debug, info, notice, warning, error, critical.")
        }
        XCTAssertEqual(try NodeSettingsLayer(environment: ["TRELLIS_FAILURE_TIMEOUT": "2500"]).failureTimeoutMs, 2_500)
        XCTAssertEqual(try NodeSettingsLayer(environment: ["TRELLIS_ACTORS": "a.lua, b.lua"]).actors, ["a.lua", "b.lua"])
        XCTAssertEqual(try NodeSettingsLayer(environment: ["TRELLIS_OVERLAY_CONFIG": "{\"k\": 1}"]).overlayConfig, .map(["k": .int(1)]))
    }

    func testUnknownTrellisVariablesAreReportedWithTheClosestName() {
        let warnings = NodeSettingsLayer.unknownVariables(
            in: ["TRELLIS_LISTN": "x", "TRELLIS_CONFIG": "n.toml", "TRELLIS_COOKIE": "c", "PATH": "/bin"], alsoRead: ["TRELLIS_CONFIG"])
        XCTAssertEqual(warnings, ["TRELLIS_LISTN is not a setting of `trellis node` and is ignored; did you mean TRELLIS_LISTEN?"])
    }

    func testTheShippedExampleIsValid() throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples/node.toml").path
        let secrets = try NodeSettingsLayer(environment: ["TRELLIS_COOKIE": "c", "TRELLIS_ADMIN_TOKEN": "t"])
        let settings = try NodeSettings(resolving: [secrets, try NodeSettingsLayer(configFile: example)])
        XCTAssertEqual(settings.name, "n1")
        XCTAssertTrue(FileManager.default.fileExists(atPath: settings.overlay), settings.overlay)
        XCTAssertEqual(settings.admin?.description, "127.0.0.1:7180")
    }

    // MARK: Helpers

    private func assertFileError(
        _ text: String, _ kind: TopologyError.Kind, line: Int?, key: String?, _ fragments: String...,
        file sourceFile: StaticString = #filePath, sourceLine: UInt = #line
    ) {
        do {
            _ = try file(text)
            XCTFail("accepted \(text)", file: sourceFile, line: sourceLine)
        } catch {
            XCTAssertEqual(error.kind, kind, "\(error)", file: sourceFile, line: sourceLine)
            XCTAssertEqual(error.line, line, "\(error)", file: sourceFile, line: sourceLine)
            XCTAssertEqual(error.key, key, "\(error)", file: sourceFile, line: sourceLine)
            for fragment in fragments {
                XCTAssertTrue(error.description.contains(fragment), "\(fragment) missing from: \(error)", file: sourceFile, line: sourceLine)
            }
            XCTAssertTrue(error.description.hasPrefix(scratch.path("node.toml")), "\(error)", file: sourceFile, line: sourceLine)
        }
    }

    private func assertTextError(
        environment: [String: String], _ prefix: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try NodeSettingsLayer(environment: environment), file: file, line: line) { error in
            XCTAssertTrue("\(error)".hasPrefix(prefix), "expected \(prefix)... got \(error)", file: file, line: line)
        }
    }
}
