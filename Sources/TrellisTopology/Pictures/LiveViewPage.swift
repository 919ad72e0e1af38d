/// The page the live view serves at `/`: plain HTML with inline CSS and JavaScript, no
/// external resources.
///
/// Every 500 ms the script fetches `graph.json`, rewrites the node table (one row per node,
/// `<tr data-node="NAME" data-state="STATE">`) and the count line, and, when the nodes or edges
/// changed, swaps in `graph.svg`. When the server stops answering, the status line says the run
/// has ended and the last picture stays.
enum LiveViewPage {
    static func html(title: String) -> String {
        let title = MembersGraphSVG.escaped(title)
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>\(title): trellis live view</title>
            <style>
            body { font-family: Helvetica, Arial, sans-serif; margin: 16px; color: #212529; }
            h1 { font-size: 20px; margin: 0 0 4px; }
            #status.ended { color: #e63946; }
            main { display: flex; gap: 24px; align-items: flex-start; flex-wrap: wrap; }
            #picture { flex: 1 1 480px; }
            #picture svg { max-width: 100%; height: auto; }
            table { border-collapse: collapse; font-size: 13px; }
            th, td { padding: 2px 8px; text-align: left; border-bottom: 1px solid #dee2e6; }
            tr[data-state="killed"] td.state { color: #e63946; font-weight: bold; }
            tr[data-state="left"] td.state, tr[data-state="not started"] td.state { color: #6c757d; }
            </style>
            </head>
            <body>
            <h1>\(title)</h1>
            <p><span id="count">waiting for the first snapshot</span> &middot; <span id="status">connecting</span></p>
            <main>
            <div id="picture"></div>
            <table>
            <thead><tr><th>node</th><th>state</th><th>lists</th><th>script errors</th></tr></thead>
            <tbody id="nodes"></tbody>
            </table>
            </main>
            <script>
            "use strict";
            let drawn = "";

            function showNodes(graph) {
              const rows = graph.nodes.map(node => {
                const row = document.createElement("tr");
                row.setAttribute("data-node", node.name);
                row.setAttribute("data-state", node.state);
                const cells = [["name", node.name], ["state", node.state], ["members", node.members.join(" ")], ["errors", String(node.script_errors)]];
                for (const [kind, text] of cells) {
                  const cell = document.createElement("td");
                  cell.className = kind;
                  cell.textContent = text;
                  row.appendChild(cell);
                }
                return row;
              });
              document.getElementById("nodes").replaceChildren(...rows);
              const counts = {};
              for (const node of graph.nodes) counts[node.state] = (counts[node.state] || 0) + 1;
              const states = Object.keys(counts).sort().map(state => counts[state] + " " + state).join(", ");
              document.getElementById("count").textContent = graph.nodes.length + " nodes" + (states ? ": " + states : "");
            }

            async function poll() {
              const status = document.getElementById("status");
              try {
                const graph = await (await fetch("graph.json", { cache: "no-store" })).json();
                if (graph.elapsed_ms != null) {
                  showNodes(graph);
                  const key = JSON.stringify([graph.nodes, graph.edges]);
                  if (key !== drawn) {
                    document.getElementById("picture").innerHTML = await (await fetch("graph.svg", { cache: "no-store" })).text();
                    drawn = key;
                  }
                }
                status.textContent = graph.elapsed_ms == null ? "starting" : "live, " + (graph.elapsed_ms / 1000).toFixed(1) + " s into the run";
                status.className = "live";
              } catch (error) {
                status.textContent = "the run has ended (the server no longer answers)";
                status.className = "ended";
              }
              setTimeout(poll, 500);
            }
            poll();
            </script>
            </body>
            </html>

            """
    }
}
