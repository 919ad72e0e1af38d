import ArgumentParser
import Foundation
import TrellisTopology

extension NodeCommand {
    /// The node's settings: the flags, then the `TRELLIS_*` variables of `environment`, then
    /// the config file (`--config`, else `TRELLIS_CONFIG`), then the defaults. Unknown
    /// `TRELLIS_*` variables are reported on standard error; a bad setting or file is reported
    /// there too and exits with status 2.
    func resolveSettings(environment: [String: String]) throws -> NodeSettings {
        for warning in NodeSettingsLayer.unknownVariables(in: environment, alsoRead: ["TRELLIS_CONFIG"]) {
            FileHandle.standardError.write(Data("warning: \(warning)\n".utf8))
        }
        var texts: [NodeSettingKey: [String]] = [:]
        let single: [(NodeSettingKey, String?)] = [
            (.name, name), (.listen, listen), (.cluster, cluster), (.cookie, cookie), (.overlay, overlay),
            (.overlayConfig, overlayConfig), (.placement, placement), (.admin, admin), (.adminToken, adminToken),
            (.failureTimeout, failureTimeout), (.logLevel, logLevel), (.discovery, discovery), (.dnsServer, dnsServer),
            (.discoveryInterval, discoveryInterval), (.tlsCert, tlsCert), (.tlsKey, tlsKey), (.tlsCa, tlsCa),
            (.busyWait, busyWait),
        ]
        for (key, value) in single { texts[key] = value.map { [$0] } }
        for (key, values) in [(NodeSettingKey.seeds, seeds), (.tags, tags), (.actors, actors)] where !values.isEmpty {
            texts[key] = values
        }
        return try reportingSettingsErrors {
            let flags = try NodeSettingsLayer(texts: texts, source: \.flag)
            let variables = try NodeSettingsLayer(environment: environment)
            let file = try (config ?? environment["TRELLIS_CONFIG"]).map { path throws(TopologyError) in
                try NodeSettingsLayer(configFile: path)
            }
            return try NodeSettings(resolving: [flags, variables] + (file.map { [$0] } ?? []))
        }
    }

    /// The result of `body`; its error, a bad setting, goes to standard error and exits with
    /// status 2.
    func reportingSettingsErrors<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}
