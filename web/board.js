/* web/board.js -- moka board's page: polls the JSON endpoints of src/board/board.c and draws
 *   one uPlot chart per scalar tag, every run overlaid (raw values faint, smoothed solid),
 *   the histograms of the selected run (min / mean / max envelope over steps, and the latest
 *   step's bucket counts), its latest images, and its net graph as a layered SVG.
 * Smoothing is TensorBoard's: an exponential moving average with weight w, debiased by
 * 1 - w^k after k points, so the first points are not pulled towards 0.
 * The page's state (charts, point counts, script errors) is written as JSON into
 * <pre id="board-state"> so a headless browser's --dump-dom can check it.
 */
(function () {
    'use strict';

    var state = {ready: false, refreshes: 0, errors: [], fetch_errors: [], runs: [],
                 charts: {}, histograms: {}, images: 0, graph_nodes: 0};
    function recordError(msg) {
        state.errors.push(String(msg));
        publish();
    }
    window.addEventListener('error', function (e) {
        var where = e.filename ? ' at ' + e.filename + ':' + e.lineno : '';
        recordError((e.message || 'error') + where);
    });
    window.addEventListener('unhandledrejection', function (e) {
        recordError('unhandled rejection: ' + (e.reason && e.reason.message || e.reason));
    });
    var consoleError = console.error;
    console.error = function () {
        recordError(Array.prototype.join.call(arguments, ' '));
        consoleError.apply(console, arguments);
    };
    function publish() {
        var el = document.getElementById('board-state');
        if (el) el.textContent = JSON.stringify(state);
    }

    var $ = function (id) { return document.getElementById(id); };
    var token = new URLSearchParams(location.search).get('token');
    var palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
                   '#7f7f7f', '#bcbd22', '#17becf'];
    var runColor = {};

    function apiUrl(endpoint, params) {
        var q = new URLSearchParams(params || {});
        if (token) q.set('token', token);
        var s = q.toString();
        return 'api/' + endpoint + (s ? '?' + s : '');
    }
    function getJSON(endpoint, params) {
        return fetch(apiUrl(endpoint, params), {cache: 'no-store'}).then(function (r) {
            if (!r.ok) throw new Error(endpoint + ': HTTP ' + r.status);
            return r.json();
        });
    }

    function colorOf(run) {
        if (!(run in runColor)) {
            runColor[run] = palette[Object.keys(runColor).length % palette.length];
        }
        return runColor[run];
    }
    function fade(hex, alpha) {
        var n = parseInt(hex.slice(1), 16);
        return 'rgba(' + (n >> 16) + ',' + ((n >> 8) & 255) + ',' + (n & 255) + ',' + alpha + ')';
    }

    /* TensorBoard's smoothing: EMA with weight w, divided by 1 - w^k (k finite points so far). */
    function smooth(ys, w) {
        var out = new Array(ys.length), last = 0, k = 0;
        for (var i = 0; i < ys.length; i++) {
            var v = ys[i];
            if (v === null || !isFinite(v)) { out[i] = v; continue; }
            last = last * w + (1 - w) * v;
            k++;
            out[i] = w === 1 ? last : last / (1 - Math.pow(w, k));
        }
        return out;
    }

    function card(parent, key, title) {
        var id = 'card-' + parent.id + '-' + key;
        var el = document.getElementById(id);
        if (el) return el;
        el = document.createElement('div');
        el.className = 'card';
        el.id = id;
        var h = document.createElement('h3');
        h.textContent = title;
        h.title = title;
        el.appendChild(h);
        var body = document.createElement('div');
        body.className = 'chart';
        el.appendChild(body);
        parent.appendChild(el);
        return el;
    }
    function chartWidth(el) {
        return Math.max(200, (el.clientWidth || 460) - 22);
    }

    /* ---- scalars ---- */

    var scalarCharts = {}; /* tag -> {u, signature, el} */

    function logSafe(ys) {
        return ys.map(function (v) { return v !== null && v > 0 ? v : null; });
    }

    function drawScalar(tag, series) {
        /* series: [{run, points: [[step, wall, value], ...]}] */
        var w = parseFloat($('smoothing').value), log = $('log-scale').checked;
        var tables = [], uSeries = [{label: 'step'}];
        series.forEach(function (s) {
            var xs = s.points.map(function (p) { return p[0]; });
            var ys = s.points.map(function (p) { return p[2]; });
            var sm = smooth(ys, w);
            if (log) { ys = logSafe(ys); sm = logSafe(sm); }
            tables.push([xs, ys, sm]);
            var c = colorOf(s.run);
            uSeries.push({label: s.run + ' (raw)', stroke: fade(c, 0.3), width: 1, spanGaps: true,
                          points: {show: false}});
            uSeries.push({label: s.run, stroke: c, width: 1.6, spanGaps: true,
                          points: {show: false}});
        });
        var data = tables.length ? uPlot.join(tables) : [[]];
        var signature = JSON.stringify([log, series.map(function (s) { return s.run; })]);
        var key = tag.replace(/[^A-Za-z0-9_-]/g, '_') + '-' + hash(tag);
        var el = card($('scalar-charts'), key, tag);
        var entry = scalarCharts[tag];
        if (entry && entry.signature === signature) {
            entry.u.setData(data);
        } else {
            if (entry) entry.u.destroy();
            var body = el.querySelector('.chart');
            body.textContent = '';
            var u = new uPlot({
                width: chartWidth(el), height: 220,
                scales: {x: {time: false}, y: log ? {distr: 3, log: 10} : {}},
                series: uSeries,
                axes: [{label: 'step', size: 40}, {size: 60, values: tickLabels}],
                legend: {live: true},
                cursor: {drag: {x: true, y: false}},
            }, data, body);
            entry = scalarCharts[tag] = {u: u, signature: signature, el: el};
        }
        /* Points drawn per run: the non-null raw values in the chart's own data. */
        var counts = {};
        series.forEach(function (s, i) {
            /* uPlot.join leaves undefined where a run has no point at another run's step. */
            var raw = entry.u.data[1 + 2 * i];
            counts[s.run] = raw.filter(function (v) { return v != null; }).length;
        });
        if (log) series.forEach(function (s) { counts[s.run] = s.points.length; });
        state.charts[tag] = counts;
    }

    /* Tick labels with enough digits to tell neighbouring ticks apart (uPlot's default rounds
     * 0.0098 and 0.0099 both to 0.01). */
    function tickLabels(u, splits) {
        return splits.map(function (v) {
            if (v === null || v === undefined) return '';
            if (v === 0) return '0';
            var a = Math.abs(v);
            if (a >= 1e5 || a < 1e-3) return v.toExponential(2).replace(/\.?0+e/, 'e');
            return String(Number(v.toPrecision(4)));
        });
    }

    function hash(s) {
        var h = 0;
        for (var i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
        return (h >>> 0).toString(36);
    }

    var lastScalars = {}; /* tag -> series, redrawn when the smoothing or scale changes */

    function refreshScalars(runs) {
        var tags = [];
        runs.forEach(function (r) {
            r.scalars.forEach(function (t) { if (tags.indexOf(t) < 0) tags.push(t); });
        });
        tags.sort();
        $('scalars-empty').hidden = tags.length > 0;
        var jobs = [];
        tags.forEach(function (tag) {
            var holders = runs.filter(function (r) { return r.scalars.indexOf(tag) >= 0; });
            jobs.push(Promise.all(holders.map(function (r) {
                return getJSON('scalars', {run: r.run, tag: tag}).then(function (pts) {
                    return {run: r.run, points: pts};
                });
            })).then(function (series) {
                lastScalars[tag] = series;
                drawScalar(tag, series);
            }));
        });
        return Promise.all(jobs);
    }

    function redrawScalars() {
        Object.keys(lastScalars).forEach(function (tag) { drawScalar(tag, lastScalars[tag]); });
        publish();
    }

    /* ---- histograms ---- */

    var histCharts = {};

    function drawHistogram(tag, steps, latest) {
        var el = card($('hist-charts'), 'h' + hash(tag), tag);
        var body = el.querySelector('.chart');
        var xs = steps.map(function (h) { return h.step; });
        var mean = steps.map(function (h) { return h.num > 0 ? h.sum / h.num : null; });
        var lo = steps.map(function (h) { return h.num > 0 ? h.min : null; });
        var hi = steps.map(function (h) { return h.num > 0 ? h.max : null; });
        var env = [xs, hi, mean, lo];
        /* The latest step's buckets: bucket i spans (limit[i-1], limit[i]], clipped to [min, max]
         * so the two infinite-ish outer buckets do not stretch the axis. */
        var dx = [], dy = [];
        if (latest && latest.bucket_limit && latest.num > 0) {
            var prev = latest.min;
            for (var i = 0; i < latest.bucket_limit.length; i++) {
                var right = Math.min(latest.bucket_limit[i], latest.max);
                var left = Math.max(prev, latest.min);
                if (latest.bucket[i] > 0 || (right > left)) {
                    var mid = (left + right) / 2;
                    if (!dx.length || mid > dx[dx.length - 1]) {
                        dx.push(mid);
                        dy.push(latest.bucket[i]);
                    }
                }
                prev = latest.bucket_limit[i];
            }
        }
        var entry = histCharts[tag];
        if (!entry) {
            body.textContent = '';
            var w = chartWidth(el);
            var envEl = document.createElement('div'), distEl = document.createElement('div');
            body.appendChild(envEl);
            body.appendChild(distEl);
            var c = '#5c6bc0';
            var envU = new uPlot({
                width: w, height: 140,
                scales: {x: {time: false}},
                series: [{label: 'step'},
                         {label: 'max', stroke: fade(c, 0.5), width: 1, points: {show: false}},
                         {label: 'mean', stroke: c, width: 1.5, points: {show: false}},
                         {label: 'min', stroke: fade(c, 0.5), width: 1, points: {show: false}}],
                bands: [{series: [1, 3], fill: fade(c, 0.15)}],
                axes: [{size: 30}, {size: 55, values: tickLabels}],
                legend: {show: false},
            }, env, envEl);
            var distU = new uPlot({
                width: w, height: 110,
                scales: {x: {time: false}},
                series: [{label: 'value'},
                         {label: 'count', stroke: '#8e24aa', fill: 'rgba(142,36,170,0.15)',
                          width: 1, paths: uPlot.paths.stepped({align: 0}),
                          points: {show: false}}],
                axes: [{size: 30, values: tickLabels}, {size: 55}],
                legend: {show: false},
            }, [dx, dy], distEl);
            entry = histCharts[tag] = {env: envU, dist: distU, el: el};
        } else {
            entry.env.setData(env);
            entry.dist.setData([dx, dy]);
        }
        state.histograms[tag] = xs.length;
    }

    function clearHistograms() {
        Object.keys(histCharts).forEach(function (t) {
            histCharts[t].env.destroy();
            histCharts[t].dist.destroy();
            histCharts[t].el.remove();
        });
        histCharts = {};
        state.histograms = {};
    }

    function refreshHistograms(run) {
        var tags = run ? run.histograms.slice().sort() : [];
        $('histograms-empty').hidden = tags.length > 0;
        return Promise.all(tags.map(function (tag) {
            var p = {run: run.run, tag: tag};
            return Promise.all([
                getJSON('histograms', Object.assign({buckets: '0'}, p)),
                getJSON('histograms', Object.assign({last: '1'}, p)),
            ]).then(function (res) { drawHistogram(tag, res[0], res[1][0]); });
        }));
    }

    /* ---- images ---- */

    function refreshImages(run) {
        var tags = run ? run.images.slice().sort() : [];
        $('images-empty').hidden = tags.length > 0;
        $('images-section').hidden = false;
        return Promise.all(tags.map(function (tag) {
            return getJSON('images', {run: run.run, tag: tag}).then(function (list) {
                return {tag: tag, last: list[list.length - 1]};
            });
        })).then(function (found) {
            var box = $('images');
            box.textContent = '';
            var n = 0;
            found.forEach(function (f) {
                if (!f.last) return;
                var fig = document.createElement('figure');
                var img = document.createElement('img');
                img.src = apiUrl('image', {run: run.run, tag: f.tag, index: String(f.last.index)});
                img.width = Math.max(84, f.last.width * 2);
                img.alt = f.tag;
                var cap = document.createElement('figcaption');
                cap.textContent = f.tag + ' @ step ' + f.last.step;
                fig.appendChild(img);
                fig.appendChild(cap);
                box.appendChild(fig);
                n++;
            });
            state.images = n;
        });
    }

    /* ---- graph: layers top to bottom, each node one row below its deepest input ---- */

    var lastGraph = '';

    function svgEl(name, attrs) {
        var e = document.createElementNS('http://www.w3.org/2000/svg', name);
        Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
        return e;
    }

    function drawGraph(g) {
        var view = $('graph-view');
        var nodes = g.nodes || [];
        $('graph-empty').hidden = nodes.length > 0;
        view.textContent = '';
        state.graph_nodes = nodes.length;
        if (!nodes.length) return;
        var byName = {};
        nodes.forEach(function (n, i) { byName[n.name] = i; });
        var depth = new Array(nodes.length).fill(-1);
        function depthOf(i, guard) {
            if (depth[i] >= 0) return depth[i];
            if (guard > nodes.length) return 0; /* a cycle: should not happen, do not hang */
            var d = 0;
            nodes[i].inputs.forEach(function (name) {
                var j = byName[name.replace(/^\^/, '').split(':')[0]];
                if (j !== undefined && j !== i) d = Math.max(d, depthOf(j, guard + 1) + 1);
            });
            return (depth[i] = d);
        }
        var rows = [];
        nodes.forEach(function (n, i) {
            var d = depthOf(i, 0);
            (rows[d] = rows[d] || []).push(i);
        });
        var boxW = 200, boxH = 40, gapX = 24, gapY = 34, pad = 16;
        var widest = Math.max.apply(null, rows.map(function (r) { return r ? r.length : 0; }));
        var W = pad * 2 + widest * boxW + (widest - 1) * gapX;
        var pos = [];
        rows.forEach(function (row, d) {
            if (!row) return;
            var rowW = row.length * boxW + (row.length - 1) * gapX;
            row.forEach(function (i, k) {
                pos[i] = {x: (W - rowW) / 2 + k * (boxW + gapX), y: pad + d * (boxH + gapY)};
            });
        });
        var H = pad * 2 + rows.length * boxH + (rows.length - 1) * gapY;
        var svg = svgEl('svg', {width: W, height: H, viewBox: '0 0 ' + W + ' ' + H});
        var defs = svgEl('defs');
        var marker = svgEl('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5,
                                      markerWidth: 6, markerHeight: 6, orient: 'auto'});
        marker.appendChild(svgEl('path', {d: 'M0,0 L10,5 L0,10 z', style: 'fill:#90a4ae'}));
        defs.appendChild(marker);
        svg.appendChild(defs);
        nodes.forEach(function (n, i) {
            n.inputs.forEach(function (name) {
                var j = byName[name.replace(/^\^/, '').split(':')[0]];
                if (j === undefined || j === i) return;
                var x1 = pos[j].x + boxW / 2, y1 = pos[j].y + boxH;
                var x2 = pos[i].x + boxW / 2, y2 = pos[i].y;
                var my = (y1 + y2) / 2;
                svg.appendChild(svgEl('path', {
                    d: 'M' + x1 + ',' + y1 + ' C' + x1 + ',' + my + ' ' + x2 + ',' + my +
                       ' ' + x2 + ',' + y2,
                    'marker-end': 'url(#arrow)'}));
            });
        });
        nodes.forEach(function (n, i) {
            var gEl = svgEl('g', {transform: 'translate(' + pos[i].x + ',' + pos[i].y + ')'});
            var op = n.op.toLowerCase();
            var cls = /loss/.test(op) ? 'loss' : /data|input/.test(op) ? 'data' : '';
            gEl.appendChild(svgEl('rect', {width: boxW, height: boxH, rx: 5, 'class': cls}));
            var t1 = svgEl('text', {x: boxW / 2, y: 16, 'text-anchor': 'middle'});
            t1.textContent = n.name.length > 30 ? n.name.slice(0, 29) + '\u2026' : n.name;
            var attrs = Object.keys(n.attrs).map(function (k) { return k + '=' + n.attrs[k]; });
            var t2 = svgEl('text', {x: boxW / 2, y: 31, 'text-anchor': 'middle', 'class': 'op'});
            var sub = n.op + (attrs.length ? ' ' + attrs.join(' ') : '');
            t2.textContent = sub.length > 31 ? sub.slice(0, 30) + '\u2026' : sub;
            var title = svgEl('title');
            title.textContent = n.name + ' (' + n.op + ')' +
                (attrs.length ? '\n' + attrs.join('\n') : '') +
                (n.inputs.length ? '\ninputs: ' + n.inputs.join(', ') : '');
            gEl.appendChild(title);
            gEl.appendChild(t1);
            gEl.appendChild(t2);
            svg.appendChild(gEl);
        });
        view.appendChild(svg);
    }

    function refreshGraph(run) {
        if (!run || !run.graph) {
            lastGraph = '';
            drawGraph({nodes: []});
            return Promise.resolve();
        }
        return getJSON('graph', {run: run.run}).then(function (g) {
            var key = run.run + '\n' + JSON.stringify(g);
            if (key !== lastGraph) {
                lastGraph = key;
                drawGraph(g);
            }
        });
    }

    /* ---- the refresh loop ---- */

    var selectedRun = null;

    function updateRunSelect(runs) {
        var sel = $('run-select');
        var names = runs.map(function (r) { return r.run; });
        var have = Array.prototype.map.call(sel.options, function (o) { return o.value; });
        if (JSON.stringify(names) !== JSON.stringify(have)) {
            sel.textContent = '';
            names.forEach(function (n) {
                var o = document.createElement('option');
                o.value = n;
                o.textContent = n;
                sel.appendChild(o);
            });
        }
        if (selectedRun === null || names.indexOf(selectedRun) < 0) {
            /* Prefer a run that has histograms or a graph, so those sections show something. */
            var rich = runs.filter(function (r) { return r.histograms.length || r.graph; })[0];
            selectedRun = rich ? rich.run : names.length ? names[0] : null;
        }
        if (selectedRun !== null) sel.value = selectedRun;
    }

    function setStatus(text, bad) {
        var s = $('status');
        s.textContent = text;
        s.className = bad ? 'status error' : 'status';
    }

    var busy = false;
    function refresh() {
        if (busy) return Promise.resolve();
        busy = true;
        return getJSON('runs').then(function (runs) {
            state.runs = runs.map(function (r) { return r.run; });
            runs.forEach(function (r) { colorOf(r.run); });
            updateRunSelect(runs);
            var run = runs.filter(function (r) { return r.run === selectedRun; })[0] || null;
            return Promise.all([refreshScalars(runs), refreshHistograms(run), refreshImages(run),
                                refreshGraph(run)]);
        }).then(function () {
            state.refreshes++;
            state.ready = true;
            setStatus('updated ' + new Date().toLocaleTimeString(), false);
        }, function (e) {
            state.fetch_errors.push(String(e && e.message || e));
            if (state.fetch_errors.length > 20) state.fetch_errors.shift();
            setStatus('cannot reach the server: ' + (e && e.message || e), true);
        }).then(function () {
            busy = false;
            publish();
        });
    }

    function loop() {
        var again = function () { setTimeout(loop, 2000); };
        if ($('auto-refresh').checked) refresh().then(again, again);
        else again();
    }

    $('smoothing').addEventListener('input', function () {
        $('smoothing-value').textContent = parseFloat(this.value).toFixed(2);
        redrawScalars();
    });
    $('log-scale').addEventListener('change', redrawScalars);
    $('run-select').addEventListener('change', function () {
        selectedRun = this.value;
        clearHistograms();
        refresh();
    });
    window.addEventListener('resize', function () {
        Object.keys(scalarCharts).forEach(function (t) {
            var c = scalarCharts[t];
            c.u.setSize({width: chartWidth(c.el), height: 220});
        });
        Object.keys(histCharts).forEach(function (t) {
            var c = histCharts[t], w = chartWidth(c.el);
            c.env.setSize({width: w, height: 140});
            c.dist.setSize({width: w, height: 110});
        });
    });

    publish();
    loop();
})();
