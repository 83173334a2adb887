import { runPost } from './job-post.js';
await runPost();
