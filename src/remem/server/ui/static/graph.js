// Draws the graph page's notes and links with cytoscape; clicking a note opens it.
"use strict";

// Around a memory: rings by distance from it. A topic: a force-directed layout.
function layoutFor(data) {
  const ringed = data.nodes.some((node) => node.data.depth !== undefined);
  if (ringed) {
    return {
      name: "concentric",
      concentric: (node) => 10 - (node.data("depth") || 0),
      levelWidth: () => 1,
      minNodeSpacing: 70,
      animate: false,
      padding: 40,
    };
  }
  return { name: data.nodes.length > 1 ? "cose" : "grid", animate: false, padding: 40 };
}

document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("graph");
  const source = document.getElementById("graph-data");
  if (!box || !source || typeof window.cytoscape !== "function") return;
  const data = JSON.parse(source.textContent);
  const colour = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const graph = window.cytoscape({
    container: box,
    elements: { nodes: data.nodes, edges: data.edges },
    wheelSensitivity: 0.3,
    minZoom: 0.2,
    maxZoom: 3,
    style: [
      {
        selector: "node",
        style: {
          "background-color": colour("--accent"),
          label: "data(label)",
          color: colour("--text"),
          "font-size": 12,
          "text-wrap": "wrap",
          "text-max-width": 150,
          "text-valign": "bottom",
          "text-margin-y": 4,
          width: 18,
          height: 18,
        },
      },
      {
        selector: "node[?center]",
        style: { width: 28, height: 28, "border-width": 3, "border-color": colour("--focus") },
      },
      {
        selector: "edge",
        style: {
          width: 1.5,
          "line-color": colour("--muted"),
          "target-arrow-color": colour("--muted"),
          "target-arrow-shape": "triangle",
          "curve-style": "bezier",
          label: "data(label)",
          "font-size": 8,
          color: colour("--muted"),
        },
      },
    ],
    layout: layoutFor(data),
  });
  graph.fit(undefined, 40);
  if (graph.zoom() > 1.2) {
    graph.zoom(1.2); // a few notes: keep labels their normal size
    graph.center();
  }
  graph.on("tap", "node", (event) => {
    window.location.assign("/memories/" + encodeURIComponent(event.target.id()));
  });
  graph.on("mouseover", "node", () => { box.style.cursor = "pointer"; });
  graph.on("mouseout", "node", () => { box.style.cursor = ""; });
  // the page may still move (styles, fonts, zoom): cytoscape must know where its box is
  const refit = () => graph.resize();
  window.addEventListener("load", refit);
  if (window.ResizeObserver) new ResizeObserver(refit).observe(box);
  window.rememGraph = graph; // for the browser tests and the curious
  box.dataset.nodes = String(graph.nodes().length);
  box.dataset.edges = String(graph.edges().length);
});
