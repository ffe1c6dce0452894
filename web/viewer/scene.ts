import {
  BufferAttribute,
  BufferGeometry,
  Color,
  PerspectiveCamera,
  Points,
  Scene,
  ShaderMaterial,
  Vector3,
  WebGLRenderer,
} from 'three';
import { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js';
import { Q16_LEVELS } from '../../src/wire/encodings/q16.js';
import { ViewerColourKind } from '../../src/wire/viewer-colour.js';
import type { ViewerFrame, ViewerFrameColour } from '../../src/wire/viewer.js';

/** The page background; the test counts pixels that differ from it. */
export const BACKGROUND = 0x0b0e12;

/*
 * The GPU dequantizes: the q16 payload's integers go to WebGL as they arrived (a normalized
 * unsigned-short attribute, 0..1), and the vertex shader maps them with the payload header's
 * offset and scale (uMin = offset, uExtent = 65535 x scale). The page never
 * converts points on the CPU, so there is nothing to move to a worker. Height (z, 0..1 within the
 * frame) picks the colour from a turbo-like ramp; a scalar colour channel (a field, normalised by
 * the server to u8 or u16) goes through the same ramp, also as a normalized attribute; an RGB
 * channel gives the colour itself.
 */
const VERTEX_HEAD = /* glsl */ `
uniform vec3 uMin;
uniform vec3 uExtent;
uniform float uSize;
`;
const PLACE = /* glsl */ `
  gl_Position = projectionMatrix * modelViewMatrix * vec4(uMin + position * uExtent, 1.0);
  gl_PointSize = uSize;
`;
const VERTEX_HEIGHT = /* glsl */ `${VERTEX_HEAD}
varying float vValue;
void main() {
  vValue = position.z;${PLACE}}`;
const VERTEX_SCALAR = /* glsl */ `${VERTEX_HEAD}
attribute float aValue;
varying float vValue;
void main() {
  vValue = aValue;${PLACE}}`;
const VERTEX_RGB = /* glsl */ `${VERTEX_HEAD}
attribute vec3 aColour;
varying vec3 vColour;
void main() {
  vColour = aColour;${PLACE}}`;

const FRAGMENT_RAMP = /* glsl */ `
varying float vValue;
// Turbo colormap, polynomial approximation (Google AI, Apache-2.0).
vec3 ramp(float x) {
  const vec4 kRed4 = vec4(0.13572138, 4.61539260, -42.66032258, 132.13108234);
  const vec4 kGreen4 = vec4(0.09140261, 2.19418839, 4.84296658, -14.18503333);
  const vec4 kBlue4 = vec4(0.10667330, 12.64194608, -60.58204836, 110.36276771);
  const vec2 kRed2 = vec2(-152.94239396, 59.28637943);
  const vec2 kGreen2 = vec2(4.27729857, 2.82956604);
  const vec2 kBlue2 = vec2(-89.90310912, 27.34824973);
  x = clamp(x, 0.0, 1.0);
  vec4 v4 = vec4(1.0, x, x * x, x * x * x);
  vec2 v2 = v4.zw * v4.z;
  return vec3(dot(v4, kRed4) + dot(v2, kRed2), dot(v4, kGreen4) + dot(v2, kGreen2),
    dot(v4, kBlue4) + dot(v2, kBlue2));
}
void main() {
  gl_FragColor = vec4(ramp(vValue), 1.0);
}`;
const FRAGMENT_RGB = /* glsl */ `
varying vec3 vColour;
void main() {
  gl_FragColor = vec4(vColour, 1.0);
}`;

/** The ramp of the shaders, in CSS colours from 0 to 1 (the legend's gradient). */
export function rampStops(count = 9): string[] {
  const stops: string[] = [];
  const poly = (x: number, k4: number[], k2: number[]): number => {
    const v4 = [1, x, x * x, x * x * x];
    const v2 = [x * x * x * x, x * x * x * x * x];
    const sum =
      v4.reduce((s, v, i) => s + v * (k4[i] as number), 0) +
      v2.reduce((s, v, i) => s + v * (k2[i] as number), 0);
    return Math.round(Math.min(Math.max(sum, 0), 1) * 255);
  };
  for (let i = 0; i < count; i++) {
    const x = i / (count - 1);
    const r = poly(
      x,
      [0.13572138, 4.6153926, -42.66032258, 132.13108234],
      [-152.94239396, 59.28637943],
    );
    const g = poly(x, [0.09140261, 2.19418839, 4.84296658, -14.18503333], [4.27729857, 2.82956604]);
    const b = poly(
      x,
      [0.1066733, 12.64194608, -60.58204836, 110.36276771],
      [-89.90310912, 27.34824973],
    );
    stops.push(`rgb(${r} ${g} ${b})`);
  }
  return stops;
}

/** Size of the frame's bounds per axis: q16 spans them in 65535 steps. */
function extentOf(frame: ViewerFrame): [number, number, number] {
  const [sx, sy, sz] = frame.scale;
  return [sx * Q16_LEVELS, sy * Q16_LEVELS, sz * Q16_LEVELS];
}

/** A three.js scene that shows one point cloud at a time, with orbit controls. */
export class PointScene {
  readonly renderer: WebGLRenderer;
  readonly #scene = new Scene();
  readonly #camera = new PerspectiveCamera(50, 1, 0.01, 1e7);
  readonly #controls: OrbitControls;
  /** Shared by the three materials: the frame's bounds and the point size. */
  readonly #uniforms = {
    uMin: { value: new Vector3() },
    uExtent: { value: new Vector3(1, 1, 1) },
    uSize: { value: 2 },
  };
  readonly #materials = {
    height: new ShaderMaterial({
      vertexShader: VERTEX_HEIGHT,
      fragmentShader: FRAGMENT_RAMP,
      uniforms: this.#uniforms,
    }),
    scalar: new ShaderMaterial({
      vertexShader: VERTEX_SCALAR,
      fragmentShader: FRAGMENT_RAMP,
      uniforms: this.#uniforms,
    }),
    rgb: new ShaderMaterial({
      vertexShader: VERTEX_RGB,
      fragmentShader: FRAGMENT_RGB,
      uniforms: this.#uniforms,
    }),
  };
  readonly #host: HTMLElement;
  #points: Points | undefined;
  #framed = false;
  #renderQueued = false;
  #afterRender: ((superseded: boolean) => void)[] = [];

  constructor(host: HTMLElement) {
    this.#host = host;
    // preserveDrawingBuffer: the canvas can be read back (screenshots, the test's pixel count).
    this.renderer = new WebGLRenderer({ antialias: false, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio, 2));
    this.#scene.background = new Color(BACKGROUND);
    // Point clouds are z-up (LiDAR, ROS); three.js is y-up unless told.
    this.#camera.up.set(0, 0, 1);
    this.#camera.position.set(10, -10, 8);
    host.append(this.renderer.domElement);
    this.#controls = new OrbitControls(this.#camera, this.renderer.domElement);
    this.#controls.addEventListener('change', () => this.requestRender());
    new ResizeObserver(() => this.#resize()).observe(host);
    this.#resize();
  }

  /**
   * Shows `frame` (replacing the last one), coloured by `colour` (a channel of the frame), or by
   * height without one. `drawn` runs at the next render: with `superseded` true when a newer frame
   * replaced this one before it could be drawn.
   */
  show(
    frame: ViewerFrame,
    colour: ViewerFrameColour | undefined,
    drawn: (superseded: boolean) => void,
  ): void {
    const geometry = new BufferGeometry();
    // Normalized: WebGL reads u16 as 0..1; the shader scales by the bounds.
    geometry.setAttribute('position', new BufferAttribute(frame.quantized, 3, true));
    // Normalized too: the server mapped the channel's min..max to 0..top, the ramp takes 0..1.
    let material = this.#materials.height;
    if (colour?.kind === ViewerColourKind.RGB8) {
      geometry.setAttribute('aColour', new BufferAttribute(colour.values, 3, true));
      material = this.#materials.rgb;
    } else if (colour !== undefined) {
      geometry.setAttribute('aValue', new BufferAttribute(colour.values, 1, true));
      material = this.#materials.scalar;
    }
    this.#uniforms.uMin.value.set(...frame.offset);
    this.#uniforms.uExtent.value.set(...extentOf(frame));
    if (this.#points) {
      this.#points.geometry.dispose();
      this.#points.geometry = geometry;
      this.#points.material = material;
    } else {
      this.#points = new Points(geometry, material);
      // Its bounds are in the shader, not in the geometry.
      this.#points.frustumCulled = false;
      this.#scene.add(this.#points);
    }
    if (!this.#framed) this.#frame(frame);
    this.#afterRender.push(drawn);
    this.requestRender();
  }

  /** Forgets the cloud (a new session is framed afresh). */
  clear(): void {
    if (this.#points) {
      this.#scene.remove(this.#points);
      this.#points.geometry.dispose();
      this.#points = undefined;
    }
    this.#framed = false;
    this.requestRender();
  }

  /** Frames the next cloud afresh (the stream's sender came back: its scene may differ). */
  reframe(): void {
    this.#framed = false;
  }

  requestRender(): void {
    if (this.#renderQueued) return;
    this.#renderQueued = true;
    requestAnimationFrame(() => {
      this.#renderQueued = false;
      this.renderer.render(this.#scene, this.#camera);
      const waiting = this.#afterRender.splice(0);
      waiting.forEach((done, i) => done(i < waiting.length - 1));
    });
  }

  /**
   * Looks at the cloud from a corner above it, as close as keeps all of its bounding box in view
   * (both fields of view: a narrow page is limited by the horizontal one).
   */
  #frame(frame: ViewerFrame): void {
    const [ex, ey, ez] = extentOf(frame);
    const [ox, oy, oz] = frame.offset;
    const center = new Vector3(ox + ex / 2, oy + ey / 2, oz + ez / 2);
    const camera = this.#camera;
    const direction = new Vector3(1, -1.2, 0.8).normalize();
    // The camera's axes when it looks at the centre from `direction` (z up).
    const forward = direction.clone().negate();
    const right = new Vector3().crossVectors(forward, camera.up).normalize();
    const up = new Vector3().crossVectors(right, forward).normalize();
    const tanV = Math.tan(((camera.fov / 2) * Math.PI) / 180);
    const tanH = tanV * camera.aspect;
    let distance = 1e-3;
    for (const sx of [-0.5, 0.5])
      for (const sy of [-0.5, 0.5])
        for (const sz of [-0.5, 0.5]) {
          const corner = new Vector3(sx * ex, sy * ey, sz * ez);
          const depthOffset = corner.dot(forward);
          distance = Math.max(
            distance,
            Math.abs(corner.dot(right)) / tanH - depthOffset,
            Math.abs(corner.dot(up)) / tanV - depthOffset,
          );
        }
    // A small margin, so that the outermost points are not on the edge.
    distance *= 1.08;
    camera.position.copy(center).add(direction.multiplyScalar(distance));
    const radius = Math.max(Math.hypot(ex, ey, ez) / 2, 1e-3);
    camera.near = Math.max(distance - radius, distance / 1000) / 2;
    camera.far = (distance + radius) * 10;
    camera.updateProjectionMatrix();
    this.#controls.target.copy(center);
    this.#controls.update();
    this.#framed = true;
  }

  #resize(): void {
    const width = Math.max(this.#host.clientWidth, 1);
    const height = Math.max(this.#host.clientHeight, 1);
    this.renderer.setSize(width, height, false);
    this.#camera.aspect = width / height;
    this.#camera.updateProjectionMatrix();
    this.requestRender();
  }
}
