/**
 * Branch and tag names of a repository through the GitHub REST API (@actions/github's Octokit,
 * paginated), at an explicit API base URL (GITHUB_API_URL: GitHub Enterprise, or a local stand-in).
 */
import { normaliseBaseUrl } from '../settings/values.js';
import { getOctokit } from '@actions/github';
import { ConfigurationError, RemoteError } from '../errors.js';
import type { RepositoryRefs } from './pin-pruning.js';

export function githubRepositoryRefs(options: {
  readonly token: string;
  /** `owner/name`. */
  readonly repository: string;
  readonly apiUrl: string;
}): RepositoryRefs {
  const [owner, repo] = options.repository.split('/');
  if (!owner || !repo) {
    throw new ConfigurationError(
      `GITHUB_REPOSITORY "${options.repository}" is not owner/name; prune-pins needs the repository`,
    );
  }
  const octokit = getOctokit(options.token, { baseUrl: normaliseBaseUrl(options.apiUrl) });
  const names = async (what: 'branches' | 'tags'): Promise<string[]> => {
    try {
      const list =
        what === 'branches'
          ? await octokit.paginate(octokit.rest.repos.listBranches, { owner, repo, per_page: 100 })
          : await octokit.paginate(octokit.rest.repos.listTags, { owner, repo, per_page: 100 });
      return list.map((entry) => entry.name);
    } catch (error) {
      const status = (error as { status?: unknown }).status;
      const code = typeof status === 'number' ? status : undefined;
      throw new RemoteError(
        {
          remote: 'GitHub API',
          operation: `list ${what} of ${options.repository}`,
          ...(code !== undefined ? { status: code } : {}),
          detail: error instanceof Error ? error.message : String(error),
          hint:
            code === 401 || code === 403 || code === 404
              ? 'github-token must be able to read this repository (`permissions: contents: read`); no pin was deleted'
              : 'no pin was deleted; run gc again later',
          transient: code === undefined || code >= 500 || code === 429,
        },
        { cause: error },
      );
    }
  };
  return { repository: options.repository, branches: () => names('branches'), tags: () => names('tags') };
}
