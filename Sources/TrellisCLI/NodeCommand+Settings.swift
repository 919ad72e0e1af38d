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
            (.failureTimeout, failureTimeout), (.logLevel, logLevel),
        ]
        for (key, value) in single { texts[key] = value.map { [$0] } }
        for (key, values) in [(NodeSettingKey.seeds, seeds), (.tags, tags), (.actors, actors)] where !values.isEmpty {
            texts[key] = values
        }
        do {
            let flags = try NodeSettingsLayer(texts: texts, source: Self.flag)
            let variables = try NodeSettingsLayer(environment: environment)
            let file = try (config ?? environment["TRELLIS_CONFIG"]).map { path throws(TopologyError) in
                try NodeSettingsLayer(configFile: path)
            }
            return try NodeSettings(resolving: [flags, variables] + (file.map { [$0] } ?? []))
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(2)
        }
    }

    /// The flag that sets `key`: `--listen`, `--seed` (repeatable), ...
    static func flag(_ key: NodeSettingKey) -> String {
        switch key {
        case .seeds: "--seed"
        case .tags: "--tag"
        case .actors: "--actor"
        default: "--" + key.rawValue.replacingOccurrences(of: "_", with: "-")
        }
    }
}
