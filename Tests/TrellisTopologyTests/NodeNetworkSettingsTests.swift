import Foundation
import TrellisDiscovery
import TrellisWire
import XCTest

@testable import TrellisTopology

/// `trellis node`'s discovery and TLS settings (`discovery`, `dns_server`,
/// `discovery_interval`, `tls_cert`, `tls_key`, `tls_ca`) from a config file, `TRELLIS_*`
/// variables and flags, and their errors.
final class NodeNetworkSettingsTests: XCTestCase {
    let scratch = try! TopologyScratch()
    /// The TLS test certificates of the transport tests (made by their `generate.sh`).
    static let certificates = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("TrellisTransportTests/Certificates").path

    func file(_ text: String) throws(TopologyError) -> NodeSettingsLayer {
        try NodeSettingsLayer(configText: text, path: scratch.path("node.toml"))
    }

    func flags(_ texts: [NodeSettingKey: [String]]) throws(NodeSettingsError) -> NodeSettingsLayer {
        try NodeSettingsLayer(texts: texts, source: \.flag)
    }

    /// The settings every node needs, so that resolving tests only what they name.
    func required() throws -> NodeSettingsLayer {
        try flags([.name: ["n1"], .overlay: ["o.lua"], .cookie: ["c"]])
    }

    func testAFileSetsDiscoveryAndTLSWithPathsFromItsFolder() throws {
        for name in ["ca.pem", "node-a.pem", "node-a.key"] {
            try FileManager.default.copyItem(atPath: Self.certificates + "/" + name, toPath: scratch.path("certs/" + name).creatingFolder())
        }
        let layer = try file("""
            discovery = "dns-srv:_trellis._tcp.example.internal"
            dns_server = "127.0.0.1:5353"
            discovery_interval = "250ms"
            tls_cert = "certs/node-a.pem"
            tls_key = "certs/node-a.key"
            tls_ca = "certs/ca.pem"
            """)
        let settings = try NodeSettings(resolving: [try required(), layer])
        XCTAssertEqual(settings.discovery, .dnsService(name: "_trellis._tcp.example.internal", server: "127.0.0.1:5353"))
        XCTAssertEqual(settings.discoveryIntervalMs, 250)
        XCTAssertEqual(settings.discoverySettings.interval, .milliseconds(250))
        XCTAssertEqual(
            settings.tls,
            NodeTLSFiles(
                certificate: scratch.path("certs/node-a.pem"), privateKey: scratch.path("certs/node-a.key"),
                ca: scratch.path("certs/ca.pem"), origins: [scratch.path("node.toml")]))
        XCTAssertNoThrow(try settings.tls?.settings(), "the copied certificates are a valid set")
    }

    func testFlagsBeatTheEnvironmentWhichBeatsTheFileForEachSetting() throws {
        let fromFile = try file("""
            discovery = "dns-a:trellis.example.internal"
            dns_server = "10.0.0.53"
            discovery_interval = 1000
            """)
        let fromEnvironment = try NodeSettingsLayer(environment: [
            "TRELLIS_DISCOVERY": "dns-srv:_t._tcp.example.internal", "TRELLIS_DISCOVERY_INTERVAL": "2s",
        ])
        let fromFlags = try flags([.discoveryInterval: ["3s"]])
        let settings = try NodeSettings(resolving: [fromFlags, fromEnvironment, fromFile, try required()])
        XCTAssertEqual(settings.discovery, .dnsService(name: "_t._tcp.example.internal", server: "10.0.0.53"),
                       "the strategy from the environment asks the file's DNS server")
        XCTAssertEqual(settings.discoveryIntervalMs, 3_000)

        let defaults = try NodeSettings(resolving: [try required()])
        XCTAssertNil(defaults.discovery)
        XCTAssertNil(defaults.tls)
        XCTAssertEqual(defaults.discoveryIntervalMs, 5_000)
    }

    func testStaticAndGossipDiscoveryIgnoreTheDNSServer() throws {
        let layer = try flags([.discovery: ["static:n2@127.0.0.1:7102,n3@127.0.0.1:7103"], .dnsServer: ["10.0.0.53"]])
        let settings = try NodeSettings(resolving: [layer, try required()])
        XCTAssertEqual(settings.discovery?.summary, "static n2@127.0.0.1:7102,n3@127.0.0.1:7103")
        XCTAssertEqual(try NodeSettingsLayer(environment: ["TRELLIS_DISCOVERY": "gossip"]).discovery?.summary, "gossip 239.255.73.1:45892")
    }

    func testTLSFilesGoTogetherAndTheErrorSaysWhereTheOthersWereSet() throws {
        let fromFile = try file("tls_ca = \"overlay.lua\"\n")
        let fromEnvironment = try NodeSettingsLayer(environment: ["TRELLIS_TLS_CERT": "n1.pem"])
        XCTAssertThrowsError(try NodeSettings(resolving: [try required(), fromEnvironment, fromFile])) { error in
            XCTAssertEqual(
                "\(error)",
                "tls_key: not set, but tls_cert (from the environment) and tls_ca (from \(scratch.path("node.toml"))) are; TLS needs "
                    + "tls_cert, tls_key and tls_ca together. Pass --tls-key, set TRELLIS_TLS_KEY or add `tls_key = \"...\"` "
                    + "to the config file; or remove the others for plain TCP.")
        }
        let mixed = try flags([.tlsCert: ["a.pem"], .tlsKey: ["a.key"]])
        let settings = try NodeSettings(resolving: [mixed, try required(), fromFile])
        XCTAssertEqual(settings.tls?.origins, ["the command line", scratch.path("node.toml")])
    }

    func testUnusableTLSFilesAreReportedWithWhereTheyWereSet() throws {
        let dir = Self.certificates + "/"
        let layer = try flags([.tlsCert: [dir + "node-a.pem"], .tlsKey: [dir + "node-b.key"], .tlsCa: [dir + "ca.pem"]])
        let settings = try NodeSettings(resolving: [layer, try required()])
        XCTAssertThrowsError(try settings.tls?.settings()) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("tls: the TLS private key \(dir)node-b.key is not the key of the certificate"), text)
            XCTAssertTrue(text.hasSuffix("The TLS files came from the command line."), text)
        }
    }

    func testEnvironmentAndFlagErrorsNameTheirSource() {
        XCTAssertThrowsError(try NodeSettingsLayer(environment: ["TRELLIS_DISCOVERY": "consul:x"])) { error in
            XCTAssertTrue("\(error)".hasPrefix("TRELLIS_DISCOVERY: unknown discovery strategy 'consul'. Write one of static:"), "\(error)")
        }
        XCTAssertThrowsError(try flags([.dnsServer: ["[fd00::a]:99999"]])) { error in
            XCTAssertTrue("\(error)".hasPrefix("--dns-server: '[fd00::a]:99999' is not an IP address"), "\(error)")
        }
        XCTAssertThrowsError(try flags([.discoveryInterval: ["-5"]])) { error in
            XCTAssertTrue("\(error)".hasPrefix("--discovery-interval: '-5' is not a positive duration"), "\(error)")
        }
        XCTAssertEqual(try flags([.dnsServer: ["[fd00::a]"]]).dnsServer, "[fd00::a]")
        XCTAssertEqual(try NodeSettingsLayer(environment: ["TRELLIS_TLS_CA": "ca.pem"]).tlsCa, "ca.pem")
    }

    func testEveryKeyHasAFlagAndAVariableNamedAfterIt() {
        let names = NodeSettingKey.allCases.map { "\($0.rawValue) \($0.flag) \($0.environmentVariable)" }
        XCTAssertTrue(names.contains("tls_ca --tls-ca TRELLIS_TLS_CA"), "\(names)")
        XCTAssertTrue(names.contains("discovery_interval --discovery-interval TRELLIS_DISCOVERY_INTERVAL"), "\(names)")
        XCTAssertTrue(names.contains("seeds --seed TRELLIS_SEEDS"), "\(names)")
    }
}

extension String {
    /// The path, after making its folder.
    fileprivate func creatingFolder() throws -> String {
        try FileManager.default.createDirectory(
            atPath: (self as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        return self
    }
}
