/* MathJax 2 settings of the probsnn site: the Markdown pages (pymdownx.arithmatex, \( \) and \[ \])
   and the notebooks ($ and $$); only the STIX-Web fonts ship with the local copy. */
MathJax.Hub.Config({
  tex2jax: {
    inlineMath: [["$", "$"], ["\\(", "\\)"]],
    displayMath: [["$$", "$$"], ["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  "HTML-CSS": { availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null },
  SVG: { font: "STIX-Web" },
  messageStyle: "none",
  showMathMenu: false,
});
MathJax.Ajax.loadComplete("[MathJax]/config/local/probsnn.js");
