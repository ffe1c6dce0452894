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
import type { ViewerFrame } from '../../src/wire/viewer.js';

/** The page background; the test counts pixels that differ from it. */
export const BACKGROUND = 0x0b0e12;

/*
 * The GPU dequantizes: the q16 payload's integers go to WebGL as they arrived (a normalized
 * unsigned-short attribute, 0..1), and the vertex shader maps them with the payload header's
 * offset and scale (uMin = offset, uExtent = 65535 x scale). The page never
 * converts points on the CPU, so there is nothing to move to a worker. Height (z, 0..1 within the
 * frame) picks the colour from a turbo-like ramp.
 */
const VERTEX = /* glsl */ `
uniform vec3 uMin;
uniform vec3 uExtent;
uniform float uSize;
varying float vHeight;
void main() {
  vHeight = position.z;
  gl_Position = projectionMatrix * modelViewMatrix * vec4(uMin + position * uExtent, 1.0);
  gl_PointSize = uSize;
}`;

const FRAGMENT = /* glsl */ `
varying float vHeight;
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
  gl_FragColor = vec4(ramp(vHeight), 1.0);
}`;

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
  readonly #material = new ShaderMaterial({
    vertexShader: VERTEX,
    fragmentShader: FRAGMENT,
    uniforms: {
      uMin: { value: new Vector3() },
      uExtent: { value: new Vector3(1, 1, 1) },
      uSize: { value: 2 },
    },
  });
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
   * Shows `frame` (replacing the last one). `drawn` runs at the next render: with `superseded`
   * true when a newer frame replaced this one before it could be drawn.
   */
  show(frame: ViewerFrame, drawn: (superseded: boolean) => void): void {
    const geometry = new BufferGeometry();
    // Normalized: WebGL reads u16 as 0..1; the shader scales by the bounds.
    geometry.setAttribute('position', new BufferAttribute(frame.quantized, 3, true));
    const uniforms = this.#material.uniforms as Record<'uMin' | 'uExtent', { value: Vector3 }>;
    uniforms.uMin.value.set(...frame.offset);
    uniforms.uExtent.value.set(...extentOf(frame));
    if (this.#points) {
      this.#points.geometry.dispose();
      this.#points.geometry = geometry;
    } else {
      this.#points = new Points(geometry, this.#material);
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
