import { runUploader } from './uploader-main.js';
await runUploader();
