import TrellisFaults
import TrellisWire

/// A cluster of nodes that `trellis up FILE` starts in one process, read from a TOML topology file.
///
/// The file format (every key except `name`, `overlay` and `[nodes]` is optional):
///
/// ```toml
/// name = "quickstart"             # required
/// cluster = "quickstart"          # cluster name (default: name)
/// cookie = "s3cret"               # default: a random cookie per run
/// overlay = "../../plugins/overlays/full_mesh.lua"  # required; relative to this file's folder, or absolute
/// timeout = "15s"                 # overall time limit (default "30s")
/// host = "127.0.0.1"              # must be in 127.0.0.0/8 or ::1 (default "127.0.0.1")
///
/// [overlay_config]                # any table; handed to the script as ctx.config
/// tick = 500
///
/// [nodes]
/// count = 5                       # nodes n1..n5, or
/// # names = ["a", "b", "c"]       # explicit names (exactly one of count/names, 1...1024 nodes)
/// base_port = 0                   # 0 = any free port; else node i listens on base_port + i - 1
/// tags = { zone = "a" }           # default tags (string values) for every node
///
/// [nodes.tags_by_node]            # per-node tags, merged over the defaults
/// n1 = { role = "seed" }
///
/// [join]
/// plan = "seed"                   # "seed" (default), "chain", "explicit" or "none"
/// seed = "n1"                     # plan "seed" only; default: the first node
/// delay = "0ms"                   # spacing between joins
/// # [join.explicit]               # plan "explicit" only: joiner = target
/// # n2 = "n1"
///
/// [[schedule]]                    # timed actions, run in order of `at`
/// at = "2s"
/// action = "leave"                # "leave" (graceful), "kill" (abrupt) or "restart" (a killed or departed node)
/// node = "n5"                     # or nodes = ["n4", "n5"]; kill also takes fraction = 0.2
/// # action = "partition" with groups = [["n1", "n2"], ["n3"]] (running nodes in no group form
/// #   one more) or fraction = 0.5 (a random half cut off from the rest)
/// # action = "heal": every partition ends
/// # action = "add" with count = 3 (new nodes n6, n7, n8) and optional via = "n1" (default:
/// #   a random running node) to join through
/// # action = "swap" with overlay = "../../plugins/overlays/hyparview.lua": the running nodes
/// #   (or node/nodes) hot-swap their overlay; `trellis up` only
/// # action = "faults" with rules = [{ action = "drop", from = "n3", channel = "membership",
/// #   probability = 0.5 }, ...] and/or script = "../../plugins/faults/slow_node.lua": the
/// #   running nodes (or node/nodes) judge what they receive by this plan from now on; with
/// #   neither, faults end (the simulator applies it to membership traffic)
///
/// placement = "../../plugins/placement/rendezvous.lua"   # default: built-in rendezvous
///
/// [[capabilities]]                # `trellis up` only: a Lua actor serving a capability
/// actor = "../../plugins/actors/counter.lua"
/// nodes = ["n1", "n2"]            # default: every node, added ones included
///
/// [[workload]]                    # `trellis up` only: calls to processes during the run
/// name = "counters"
/// capability = "counter"
/// ids = 100                       # process ids "1" ... "100"
/// calls = 20                      # calls per id, in rounds
/// from = "n1"                     # the calling node (default: the first node)
/// start = "1s"                    # first round (default 0)
/// spread = "8s"                   # rounds spread evenly over this (default 0: back to back)
/// payload = { op = "add" }        # what each call sends (default { op = "add" })
/// concurrency = 16                # calls in flight
/// check = { op = "get" }          # once the rounds and the schedule are done, every id...
/// equals = 20                     # ...must answer this
///
/// [[report]]                      # `trellis sim`: overlay figures at this time
/// at = "10s"
/// broadcasts = 20                 # floods from random live nodes to measure reliability
///
/// [tls]                           # `trellis up` only: every node runs mutual TLS with these
/// cert = "certs/node.pem"         # files (docs/tls.md), relative to this file's folder;
/// key = "certs/node.key"          # all three or no [tls] table (plain TCP)
/// ca = "certs/ca.pem"
///
/// [[expect]]                      # checked by the runner
/// name = "all converge"           # default: derived from the kind
/// kind = "members"                # every live node sees exactly `count` members
/// # nodes = ["n1", "n2"]          # optional: only these nodes are checked
/// count = 5
/// within = "5s"                   # deadline from start (default: timeout)
/// after = "start"                 # or "schedule": check once the last scheduled action ran
/// # kind = "absent" with node = "n5": n5 is in no live node's member list
/// # kind = "connected": the members graph of the live nodes is one component, without dead nodes
/// # kind = "symmetric": "connected", and every node lists each node that lists it
/// ```
///
/// Durations are strings with a unit (`"250ms"`, `"5s"`, `"1.5s"`, `"2m"`) or integer milliseconds.
/// Every problem in a file is reported as a ``TopologyError`` naming the file, line and key.
public struct Topology: Sendable, Equatable {
    /// The topology's name, used in logs and reports.
    public var name: String
    /// The cluster name every node is started with.
    public var cluster: String
    /// The shared cookie; `nil` means the runner picks a random one per run.
    public var cookie: String?
    /// The absolute, standardized path of the overlay script.
    public var overlayPath: String
    /// The `[overlay_config]` table as a `.map` (empty when absent), handed to the script as `ctx.config`.
    public var overlayConfig: Value
    /// The overall time limit of a run, in milliseconds.
    public var timeoutMs: Int
    /// The loopback address all nodes listen on.
    public var host: String
    /// The nodes, in file order (`n1`, `n2`, ... for `count`).
    public var nodes: [NodeSpec]
    /// Who joins whom, resolved into explicit steps.
    public var join: JoinPlan
    /// The timed actions, sorted by ``ScheduledAction/atMs`` (file order among equal times).
    public var schedule: [ScheduledAction]
    /// The expectations the runner checks, in file order.
    public var expectations: [Expectation]
    /// When `trellis sim` reports the overlay's figures, sorted by time.
    public var reports: [ReportPoint] = []
    /// The absolute path of the placement script; `nil` for the built-in rendezvous placement.
    public var placementPath: String? = nil
    /// The capabilities the nodes serve with Lua actors (`trellis up` only).
    public var capabilities: [CapabilitySpec] = []
    /// Calls made to processes during the run, and what they must add up to (`trellis up` only).
    public var workloads: [Workload] = []
    /// The TLS files every node uses (`trellis up` only); `nil` is plain TCP.
    public var tls: NodeTLSFiles? = nil
}

/// A time at which the simulator measures the overlay.
public struct ReportPoint: Sendable, Equatable {
    /// When, in milliseconds from start.
    public var atMs: Int
    /// How many floods from random live nodes measure broadcast reliability.
    public var broadcasts: Int
}

/// One node of a topology.
public struct NodeSpec: Sendable, Equatable {
    /// The node's name (letters, digits, `_`, `-`, `.`).
    public var name: String
    /// The port to listen on; `0` means any free port.
    public var port: Int
    /// The node's tags: the `[nodes]` defaults with its `tags_by_node` entry merged over them.
    public var tags: [String: String]
    /// When a scheduled `add` starts the node; `nil` for nodes that run from the start.
    public var addedAtMs: Int? = nil
}

/// How the nodes join each other after they start.
public struct JoinPlan: Sendable, Equatable {
    /// The plan as written in the file.
    public enum Strategy: Sendable, Equatable {
        /// Everyone joins through the named seed node.
        case seed(String)
        /// Each node joins the one before it.
        case chain
        /// The `[join.explicit]` table says who joins whom.
        case explicit
        /// Nobody joins; the overlay script forms the cluster on its own.
        case none
    }

    /// One join: `joiner` contacts `target`.
    public struct Step: Sendable, Equatable {
        /// The node that joins.
        public var joiner: String
        /// The node it joins through.
        public var target: String

        public init(joiner: String, target: String) {
            self.joiner = joiner
            self.target = target
        }
    }

    /// The plan as written.
    public var strategy: Strategy
    /// The joins to perform, in node order.
    public var steps: [Step]
    /// The pause between two consecutive joins, in milliseconds.
    public var delayMs: Int
}

/// A timed action on one or more nodes.
public struct ScheduledAction: Sendable, Equatable {
    /// What happens to the nodes.
    public enum Action: String, Sendable, Equatable, CaseIterable {
        /// The node leaves the cluster gracefully and stops.
        case leave
        /// The node stops abruptly, without telling anyone.
        case kill
        /// A killed (or departed) node starts again on its old port and re-joins.
        case restart
        /// The network splits into groups that cannot reach one another.
        case partition
        /// Every partition ends.
        case heal
        /// New nodes start and join.
        case add
        /// The running nodes (or the named ones) hot-swap their overlay to `scriptPath`
        /// (`trellis up` only).
        case swap
        /// The running nodes (or the named ones) judge what they receive by `faults` from now
        /// on; an empty plan ends it.
        case faults
    }

    /// When the action happens, in milliseconds from start.
    public var atMs: Int
    /// What happens.
    public var action: Action
    /// The nodes it happens to (for `add`, the new nodes).
    public var nodes: [String]
    /// `kill`, `partition`: the fraction of the running nodes, picked at random when the
    /// action runs, that is killed or cut off from the rest.
    public var fraction: Double? = nil
    /// `partition`: groups whose nodes can only reach one another; running nodes in no group
    /// form one more group.
    public var groups: [[String]] = []
    /// `add`: the node the new nodes join through; `nil` for a random running node.
    public var via: String? = nil
    /// `swap`: the absolute path of the new overlay script.
    public var scriptPath: String? = nil
    /// `faults`: the rules and script to apply.
    public var faults: FaultPlan? = nil
}

/// A property of the cluster that the runner checks.
public struct Expectation: Sendable, Equatable {
    /// What is checked.
    public enum Kind: Sendable, Equatable {
        /// Every live (not left or killed) node sees exactly this many members; with `nodes`,
        /// every live node among those named.
        case members(count: Int, nodes: [String]? = nil)
        /// The named node is in no live node's member list.
        case absent(node: String)
        /// The live nodes' member lists, read as a graph, form one connected component, every
        /// live node has a live peer, and no list holds a node that is not live: what a
        /// partial-view overlay (HyParView) promises, where member counts vary. With `symmetric`,
        /// also every node lists each node that lists it.
        case connected(symmetric: Bool)
    }

    /// From when on the expectation is checked.
    public enum Anchor: String, Sendable, Equatable {
        /// From the start of the run.
        case start
        /// Once the last scheduled action has run.
        case schedule
    }

    /// A human-readable name for reports.
    public var name: String
    /// What is checked.
    public var kind: Kind
    /// The deadline, in milliseconds from start.
    public var withinMs: Int
    /// From when on the expectation is checked.
    public var after: Anchor
}

extension Topology {
    /// Whom the restarted node at `index` joins through: the node its join step named, if that
    /// one runs, otherwise the first other running node.
    func rejoinTarget(for index: Int, isRunning: (Int) -> Bool) -> Int? {
        let seed = join.steps.first { $0.joiner == nodes[index].name }?.target
        return nodes.indices.first { nodes[$0].name == seed && isRunning($0) }
            ?? nodes.indices.first { $0 != index && isRunning($0) }
    }
}
