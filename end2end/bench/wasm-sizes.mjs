// What the WASM is made of: code bytes per crate and the largest functions, read from the name
// section of the module cargo writes before wasm-bindgen and wasm-opt (which strip the names).
//
//   cargo leptos build --release        # or any build of the frontend crate
//   node end2end/bench/wasm-sizes.mjs target/front/wasm32-unknown-unknown/wasm-release/frontend.wasm [TOP]
//   PATS=hydrate_async,serde_json,chrono node end2end/bench/wasm-sizes.mjs <wasm>   # bytes by name part
//
// Figures are before wasm-opt (which shrinks everything by roughly a third), so compare them
// with each other, not with the served file.
import { readFileSync } from 'node:fs';

const buf = readFileSync(process.argv[2]);
const top = Number(process.argv[3] || 30);
let p = 8;
const leb = () => {
  let r = 0;
  let s = 0;
  let b;
  do {
    b = buf[p++];
    r += (b & 0x7f) * 2 ** s;
    s += 7;
  } while (b & 0x80);
  return r;
};
let imports = 0;
let dataSize = 0;
const bodies = [];
const names = new Map();
while (p < buf.length) {
  const id = buf[p++];
  const size = leb();
  const end = p + size;
  if (id === 2) {
    for (let i = 0, n = leb(); i < n; i++) {
      // (not `p += leb()`: that would add to the position from before the length was read)
      for (let k = 0; k < 2; k++) {
        const len = leb();
        p += len;
      }
      const kind = buf[p++];
      if (kind === 0) {
        leb();
        imports++;
      } else if (kind === 1) {
        p++;
        if (leb() & 1) leb();
        leb();
      } else if (kind === 2) {
        if (leb() & 1) leb();
        leb();
      } else if (kind === 3) p += 2;
      else leb();
    }
  } else if (id === 10) {
    for (let i = 0, n = leb(); i < n; i++) {
      const s = leb();
      bodies.push(s);
      p += s;
    }
  } else if (id === 11) dataSize = size;
  else if (id === 0) {
    const l = leb();
    const name = buf.subarray(p, p + l).toString();
    p += l;
    while (name === 'name' && p < end) {
      const sub = buf[p++];
      const subEnd = leb() + p;
      if (sub === 1) {
        for (let i = 0, n = leb(); i < n; i++) {
          const idx = leb();
          const nl = leb();
          names.set(idx, buf.subarray(p, p + nl).toString());
          p += nl;
        }
      }
      p = subEnd;
    }
  }
  p = end;
}
// The crate of a mangled name: legacy `_ZN<len><crate>…`, v0 `…Cs<hash>_<len><crate>…`, or
// the first path segment of a demangled one.
const crateOf = (n) => {
  const legacy = n.match(/^_ZN(\d+)/);
  if (legacy) return n.slice(3 + legacy[1].length, 3 + legacy[1].length + Number(legacy[1]));
  const v0 = n.match(/Cs[0-9A-Za-z]+_(\d+)/);
  if (n.startsWith('_R') && v0) {
    const at = n.indexOf(v0[0]) + v0[0].length;
    return n.slice(at, at + Number(v0[1]));
  }
  return n.replace(/^[<&]+/, '').split('::')[0];
};
const fns = bodies.map((s, i) => [s, names.get(i + imports) || `#${i}`]);
const code = bodies.reduce((a, b) => a + b, 0);
console.log(`file ${buf.length} bytes, code ${code}, data ${dataSize}, ${bodies.length} functions${names.size ? '' : ' (no name section)'}`);
for (const pat of (process.env.PATS || '').split(',').filter(Boolean)) {
  const hit = fns.filter(([, n]) => n.includes(pat));
  console.log(`name contains ${pat}: ${hit.reduce((a, [s]) => a + s, 0)} bytes in ${hit.length} functions`);
}
const groups = new Map();
for (const [s, n] of fns) groups.set(crateOf(n), (groups.get(crateOf(n)) || 0) + s);
console.log('--- code bytes by crate (generic code counts where it is defined)');
[...groups].sort((a, b) => b[1] - a[1]).slice(0, top).forEach(([c, s]) => console.log(String(s).padStart(9), c.slice(0, 100)));
console.log('--- largest functions');
fns.sort((a, b) => b[0] - a[0]).slice(0, top).forEach(([s, n]) => console.log(String(s).padStart(9), n.slice(0, 160)));
